"""The app's screens: browse, compare, setup, run, inspect."""
