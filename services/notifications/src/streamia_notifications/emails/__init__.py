"""Emails: what a job carries, how it is rendered, and the record of what was sent."""
