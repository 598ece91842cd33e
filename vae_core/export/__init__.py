"""What a run shows, as files to take away: figures as PNG, traversals and interpolations as animated GIF (or MP4),
a run folder as a .zip."""
