"""DALI examples (``/tap/examples``): queries TOPCAT offers in its examples menu."""

from __future__ import annotations

from xml.sax.saxutils import escape

REF = "ivo://cadc.nrc.ca/CFHT?1032210/1032210p"
REF2 = "caom:CFHT/1032211/1032211p"

TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    (
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
    (
        "refine-with-several",
        "Refine a search with several reference images",
        "Several images separated by | stand for their mean fingerprint.",
        """SELECT TOP 20 f.publisherID, fp_similar(f.fp, '{ref}|{ref2}') AS sim
FROM caomai.fingerprint AS f
ORDER BY sim DESC""",
    ),
    (
        "image-kind",
        "Images of a kind: Map-2 nodes",
        "Images on Map-2 nodes 12, 13 or 40, or one grid step away from them.",
        """SELECT TOP 100 f.publisherID, f.map2_node, f.n_detected
FROM caomai.fingerprint AS f
WHERE in_node(f.map2_node, '12,13,40', 1) = 1""",
    ),
    (
        "object-kind",
        "Images holding objects of a kind: Map-1 nodes",
        "Images with at least 10 detected objects in Map-1 nodes 100 to 105.",
        """SELECT TOP 100 p.publisherID, p.energy_bandpassName
FROM caom2.Plane AS p
JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
WHERE has_object_node(p.planeID, '100-105', 10) = 1""",
    ),
    (
        "map2-census",
        "How many images each Map-2 node holds",
        "The image map's populations, with the node labels.",
        """SELECT f.map2_node, COUNT(*) AS n
FROM caomai.fingerprint AS f
GROUP BY f.map2_node
ORDER BY n DESC""",
    ),
    (
        "cone-search",
        "ObsCore cone search",
        "Science images whose centre lies within 1 degree of a position.",
        """SELECT TOP 100 obs_id, s_ra, s_dec, DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', 150.0, 2.2)) AS dist
FROM ivoa.ObsCore
WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 150.0, 2.2, 1.0)) = 1""",
    ),
)


def document(base: str, refs: list[str] | None = None) -> str:
    """The examples, with images of this service's own archive as references when it has
    some (so that every example runs as it is)."""
    refs = list(refs or [])
    ref = refs[0] if refs else REF
    ref2 = refs[1] if len(refs) > 1 else REF2
    divs = []
    for key, name, text, template in TEMPLATES:
        query = template.replace("{ref}", ref).replace("{ref2}", ref2)
        divs.append(
            f'<div typeof="example" id="{key}" resource="#{key}">\n'
            f'  <h2 property="name">{escape(name)}</h2>\n'
            f"  <p>{escape(text)}</p>\n"
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
