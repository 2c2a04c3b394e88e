"""Lookup tables maintained outside sentinel, named in collectors (``lookup: {standard: iso3166-alpha2}``).

Identity providers write countries as English names (Okta: MaxMind GeoIP names such as "United States",
"Russia", "The Netherlands"); rules compare ISO 3166 alpha-2 codes, as Entra writes them. The names, official
names, common names and alpha-3 codes come from pycountry (the ISO 3166 database as Debian's iso-codes ships
it), so a renamed country arrives with a package upgrade rather than a code change. The aliases cover the
GeoIP English names that ISO spells differently.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

# GeoIP2 / common English names that are neither an ISO name nor an ISO common name.
_GEOIP_NAMES = {
    "russia": "RU", "turkey": "TR", "the netherlands": "NL", "ivory coast": "CI", "cape verde": "CV",
    "palestine": "PS", "micronesia": "FM", "brunei": "BN", "kosovo": "XK", "vatican city": "VA", "vatican": "VA",
    "swaziland": "SZ", "macedonia": "MK", "dr congo": "CD", "democratic republic of the congo": "CD",
    "congo republic": "CG", "burma": "MM", "east timor": "TL", "st kitts and nevis": "KN",
    "st vincent and grenadines": "VC", "st lucia": "LC", "republic of korea": "KR", "saint martin": "MF",
    "sint maarten": "SX", "åland": "AX", "aland": "AX", "falkland islands": "FK", "u.s. virgin islands": "VI",
    "bonaire, sint eustatius, and saba": "BQ", "hashemite kingdom of jordan": "JO", "republic of moldova": "MD",
    "south georgia and south sandwich islands": "GS", "st helena": "SH", "st pierre and miquelon": "PM",
    "st barthélemy": "BL", "u.s. outlying islands": "UM", "heard and mcdonald islands": "HM",
    "federated states of micronesia": "FM", "laos": "LA", "syria": "SY", "iran": "IR", "vietnam": "VN",
}


@cache
def iso3166_alpha2() -> dict[str, str]:
    """Lower-cased country name, official name, common name, alpha-3 or alpha-2 code → alpha-2 code."""
    # Imported when a collector first looks a country up, not by every process that imports the decoders.
    import pycountry

    table: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        for attr in ("name", "official_name", "common_name", "alpha_3", "alpha_2"):
            value = getattr(country, attr, None)
            if value:
                table[str(value).lower()] = code
    for name, code in _GEOIP_NAMES.items():
        table.setdefault(name, code)
    return table


STANDARD_TABLES: dict[str, Callable[[], dict[str, str]]] = {"iso3166-alpha2": iso3166_alpha2}
