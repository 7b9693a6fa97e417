"""The kiosk's Kivy widgets: thin, laid out in ``kiosk.kv``, driven by ``KioskViewModel``."""
