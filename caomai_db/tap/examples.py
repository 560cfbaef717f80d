"""The example queries, kept once: DALI examples (``/tap/examples``, which TOPCAT offers in its
examples menu), the README's ```adql blocks (:func:`markdown_examples`, a test keeps them
equal), the demo's query (``caomai_loaders.demo``) and the queries DaCHS translates in
``tests/test_dachs.py``.

A query is a template: ``{ref}`` and ``{ref2}`` stand for reference images, ``{band}`` for a
band, ``{nodes}`` for a range of Map-1 nodes; :meth:`Example.query` fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

REF = "ivo://cadc.nrc.ca/CFHT?1032210/1032210p"
REF2 = "caom:CFHT/1032211/1032211p"
BAND = "r"
#: Map-1 nodes of the examples (which kinds of objects they hold depends on the map: the demo
#: puts in a range its reference image holds objects in, so its printed query finds images)
NODES = "100-140"
#: references of the README's examples: planes ``caomai synthetic`` always makes
README_REF = "ivo://caomai.example/SYNTH?syn0000003/syn0000003p"
README_REF2 = "ivo://caomai.example/SYNTH?syn0000010/syn0000010p"


@dataclass(frozen=True)
class Example:
    """One example query."""

    key: str
    name: str
    text: str
    template: str
    #: shown in the README (on ``caomai synthetic`` planes) and translated by DaCHS in the tests
    readme: bool = False

    def query(self, ref: str = REF, ref2: str = REF2, band: str = BAND, nodes: str = NODES) -> str:
        """The query with its references, band and Map-1 nodes filled in."""
        return (
            self.template.replace("{ref}", ref)
            .replace("{ref2}", ref2)
            .replace("{band}", band)
            .replace("{nodes}", nodes)
        )


EXAMPLES: tuple[Example, ...] = (
    Example(
        "similar-images",
        "Images that look like a reference image, with metadata filters",
        "The 50 MegaPrime images most similar in content to a reference image (give its"
        " publisherID, caom: URI or planeID), on the same or a neighbouring Map-2 node, without"
        " 5 or more objects in Map-1 nodes 101 and 144. The vector index answers the ORDER BY.",
        """SELECT TOP 50 o.observationID, p.productID, fp_similar(f.fp, '{ref}') AS sim
FROM caom2.Observation AS o
JOIN caom2.Plane AS p ON p.obsID = o.obsID
JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
WHERE o.instrument_name = 'MegaPrime' AND p.calibrationLevel = 2
  AND in_node(f.map2_node, '{ref}', 1) = 1
  AND has_object_node(p.planeID, '101,144', 5) = 0
ORDER BY sim DESC""",
    ),
    Example(
        "refine-with-several",
        "Refine a search with several reference images",
        "Several images separated by | stand for their mean fingerprint.",
        """SELECT TOP 20 f.publisherID, fp_similar(f.fp, '{ref}|{ref2}') AS sim
FROM caomai.fingerprint AS f
ORDER BY sim DESC""",
    ),
    Example(
        "image-kind",
        "Images of a kind: Map-2 nodes",
        "Images on Map-2 nodes 12, 13 or 40, or one grid step away from them.",
        """SELECT TOP 100 f.publisherID, f.map2_node, f.n_detected
FROM caomai.fingerprint AS f
WHERE in_node(f.map2_node, '12,13,40', 1) = 1""",
    ),
    Example(
        "object-kind",
        "Images holding objects of a kind: Map-1 nodes",
        "Images with at least 10 detected objects in Map-1 nodes 100 to 105.",
        """SELECT TOP 100 p.publisherID, p.energy_bandpassName
FROM caom2.Plane AS p
JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
WHERE has_object_node(p.planeID, '100-105', 10) = 1""",
    ),
    Example(
        "map2-census",
        "How many images each Map-2 node holds",
        "The image map's populations, with the node labels.",
        """SELECT f.map2_node, COUNT(*) AS n
FROM caomai.fingerprint AS f
GROUP BY f.map2_node
ORDER BY n DESC""",
    ),
    Example(
        "cone-search",
        "ObsCore cone search",
        "Science images whose centre lies within 1 degree of a position.",
        """SELECT TOP 100 obs_id, s_ra, s_dec, DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 150.0, 2.2)) AS dist
FROM ivoa.ObsCore
WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 150.0, 2.2, 1.0)) = 1""",
    ),
    Example(
        "similar-in-band",
        "Images like one, in its band",
        "The five images most like a reference image as images (the image vector: its objects,"
        " sky, depth and PSF), in one band (the query `caomai demo` runs).",
        """SELECT TOP 5 p.publisherID, p.energy_bandpassName, fp_similar(f.image_vec, '{ref}') AS sim
FROM caom2.Plane AS p
JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
WHERE p.energy_bandpassName = '{band}'
ORDER BY sim DESC""",
    ),
    Example(
        "similar-calibrated",
        "The images most like one, calibrated, in one band",
        "The ten images most similar to a reference image among calibrated images of one band,"
        " with their instrument.",
        """SELECT TOP 10 p.publisherID, o.instrument_name, fp_similar(f.fp, '{ref}') AS sim
FROM caom2.Plane AS p
JOIN caom2.Observation AS o ON o.obsID = p.obsID
JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
WHERE p.energy_bandpassName = '{band}' AND p.calibrationLevel >= 2
ORDER BY sim DESC""",
        readme=True,
    ),
    Example(
        "neighbours-with-objects",
        "Images near one on Map 2, holding objects of a kind",
        "Images on or next to a reference image's Map-2 node holding at least five objects in"
        " Map-1 nodes 100 to 140.",
        """SELECT TOP 20 p.publisherID, f.map2_node, f.n_detected
FROM caom2.Plane AS p
JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
WHERE in_node(f.map2_node, '{ref}', 1) = 1
  AND has_object_node(p.planeID, '{nodes}', 5) = 1
ORDER BY f.n_detected DESC, p.publisherID""",
        readme=True,
    ),
    Example(
        "count-similar-to-mean",
        "How many images look like two images' mean",
        "The number of images more than 0.5 similar to the mean fingerprint of two images.",
        """SELECT COUNT(*) AS n
FROM caomai.fingerprint AS f
WHERE fp_similar(f.fp, '{ref}|{ref2}') > 0.5""",
        readme=True,
    ),
)


def document(base: str, refs: list[str] | None = None) -> str:
    """The examples, with images of this service's own archive as references when it has
    some (so that every example runs as it is)."""
    refs = list(refs or [])
    ref = refs[0] if refs else REF
    ref2 = refs[1] if len(refs) > 1 else REF2
    divs = []
    for ex in EXAMPLES:
        query = ex.query(ref, ref2)
        divs.append(
            f'<div typeof="example" id="{ex.key}" resource="#{ex.key}">\n'
            f'  <h2 property="name">{escape(ex.name)}</h2>\n'
            f"  <p>{escape(ex.text)}</p>\n"
            f'  <pre property="query">{escape(query)}</pre>\n'
            "</div>"
        )
    body = "\n".join(divs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">\n'
        "<head><title>caomai TAP examples</title></head>\n"
        '<body vocab="http://www.ivoa.net/rdf/examples#">\n'
        f"<h1>Examples for {escape(base)}</h1>\n{body}\n</body>\n</html>\n"
    )


def by_key(key: str) -> Example:
    """The example named ``key``."""
    return next(ex for ex in EXAMPLES if ex.key == key)


def readme_queries(ref: str = README_REF, ref2: str = README_REF2) -> list[str]:
    """The README's example queries, in order."""
    return [ex.query(ref, ref2) for ex in EXAMPLES if ex.readme]


README_BEGIN = "<!-- BEGIN adql-examples (generated from caomai_db/tap/examples.py) -->"
README_END = "<!-- END adql-examples -->"


def markdown_examples() -> str:
    """The README's ```adql blocks, generated from :data:`EXAMPLES` (a test keeps them equal)."""
    blocks = [f"```adql\n{q}\n```" for q in readme_queries()]
    return "\n".join([README_BEGIN, "\n\n".join(blocks), README_END])
