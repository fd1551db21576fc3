"""Media handling for movies: subtitles, probing, storage, streamed uploads and Range serving."""
