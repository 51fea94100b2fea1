"""Deploying to boards: board profiles (``boards``), SSH (``ssh``), cross-building, bundling
and installing (``bundle``) and the programs that run on a board (``programs/``)."""
