"""The movie catalogue: metadata, media, subtitles, search and the rating projection."""
