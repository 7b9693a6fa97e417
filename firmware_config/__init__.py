"""Node and tag profiles, demo stores and their JSON schemas: data, not code.

This ``__init__.py`` makes the folder a package so it ships whole in the wheel and is
read through ``importlib.resources`` (``mallnet.resources.data_dir``).
"""
