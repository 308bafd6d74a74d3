"""`make bench`: Sonora against nginx and aiohttp references, side by side in one run (SPEC §11)."""
