"""The doors: ``paintseg predict`` (the LightningCLI run), ``paintseg segment`` (one image) and
``paintseg app`` (the web app). Each imports only what it needs; see ``paintseg_engine.__main__``."""
