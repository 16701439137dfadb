"""The shipped checkpoints, installed as the data package ``gsc_checkpoints``.

Each folder holds ``config.json`` + ``model.safetensors``; ``MANIFEST.json`` lists every
weight file's sha256 and the command that rebuilds it. Nothing here is code.
"""
