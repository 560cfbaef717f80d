"""The simulated MegaCam-like archive: conditions, PSFs, sky content, rendering, files.

``caomai_loaders.simulate`` is the entry point (``simulate_archive``, ``caomai simulate``); this
package holds its parts, one module each:

- ``conditions`` — the quality classes and the per-exposure observing conditions they set;
- ``mosaic``     — CCD layout, celestial TAN WCS and the MegaCam-like FITS headers;
- ``psf``        — the exposure's PSF (GalSim), drawn once on a fine grid;
- ``scene``      — what is in the field: stars, galaxies, mergers, trails, bright stars;
- ``render``     — one CCD in electrons and ADU: PSF, saturation and bleed, cosmic rays,
                   background problems, Poisson and read noise.
"""
