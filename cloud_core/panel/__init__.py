"""The mall's web control panel, served by the core under ``/panel`` (docs/core.md, "Control
panel"): server-rendered Jinja2 pages (``templates/``), vendored htmx and uPlot
(``static/vendor/``), one router module (``router.py``) and what each role sees
(``views.py``)."""
