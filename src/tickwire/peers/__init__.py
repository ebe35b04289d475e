"""Launchers for the external reference programs tickwire is compared and tested against."""
