"""Run folders on disk: saving, loading, listing, carried samples, sweep manifests, families."""
