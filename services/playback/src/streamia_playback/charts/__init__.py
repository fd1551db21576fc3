"""What everyone watches: most watched in a window, and trending (a time-decayed score)."""
