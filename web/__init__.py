"""caomai's web page: the interactive maps of the CAOM-AI talk, and the JSON API under it.

The page is one more client of the TAP service: every result it lists comes from an ADQL
query it shows and sends to ``/tap/sync``. The JSON API reads the published map tables and
the previews, and fingerprints an uploaded image with the active models; it writes nothing.
``caomai serve`` mounts it through the ``caomai.web`` entry point (:func:`caomai_web.routes.mount`).
"""
