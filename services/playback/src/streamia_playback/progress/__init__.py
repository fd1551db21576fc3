"""Watch progress per (user, movie): resume, continue watching, history."""
