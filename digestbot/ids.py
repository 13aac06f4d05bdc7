"""Canonical paper ids.

A paper's id is its version-less arXiv id when known (``2401.01234``,
``cond-mat/0412498``), else ``t-`` and 12 hex digits of the SHA-256 of its key
(``paper_key``): its normalised title (NFKC, casefolded, punctuation and white space
folded; letters and digits of every script are kept, and the vowel signs and tone marks
that spell Brahmic and Thai-family words; TeX accents as arXiv's titles keep them,
``Schr\\"odinger``, read as their letters, and TeX maths as Unicode prints it:
``$\\alpha$-divergence`` is ``α-divergence``, ``fold_tex_math``). The key is also kept as
``title_key`` so that a paper first seen without an arXiv id merges with the same
paper seen later with one.

A title with no letter or digit at all (``∇ ⊗ ∇``, ``???``, emoji) normalises to
nothing, so the key falls back to the paper's own link (a feed item's), else to a
hash of its title and abstract: distinct papers stay distinct, the same item seen
again keeps its id. These keys hold ``:``, which no normalised title does.

So does a generic title that journals and blogs give a new item in every issue
(``GENERIC_TITLES``: ``Editorial``, ``Issue Information``, ``Erratum``…): every such
item is its own paper, keyed by its DOI (``doi:``), else its link, else its title and
abstract.

``parse_arxiv_id`` reads every form a source uses: ``2411.17700v1``,
``arXiv:2411.17700v1``, ``oai:arXiv.org:2411.17700v1``,
``http://arxiv.org/abs/2411.17700v2``, ``https://arxiv.org/pdf/2411.17700v2.pdf``,
``https://huggingface.co/papers/2411.17700``, arXiv's HTML renderings
(``https://ar5iv.labs.arxiv.org/html/2411.17700``), old-style ``cond-mat/0412498v1`` and
``math.GT/0309136``, and arXiv's DataCite DOI (``10.48550/arXiv.2411.17700``, as
``https://doi.org/…`` or ``doi:…``). Old-style ids need a real archive name, and
new-style ids a real month, so that numbers in other URLs are not taken for arXiv ids.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote, urlsplit, urlunsplit

# The combining marks (Unicode categories Mn, Mc, Me) of the Brahmic and South-East Asian
# scripts (Devanagari to Sinhala, Thai, Lao, Tibetan, Myanmar, Khmer): vowel signs, viramas
# and tone marks are part of a word's spelling there (``कि`` is not ``क``), so they are kept
# in a title's key. Marks of other scripts (a Latin accent NFKC could not compose) are
# punctuation to the key as before, so ids of Latin, Greek, Cyrillic and CJK titles stay.
_SPELLING_RANGES = ((0x0900, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF))
_SPELLING_MARKS = "".join(
    chr(code)
    for low, high in _SPELLING_RANGES
    for code in range(low, high + 1)
    if unicodedata.category(chr(code)).startswith("M")
)
_NON_WORD = re.compile(rf"(?:(?![{_SPELLING_MARKS}])[\W_])+", re.UNICODE)
# the same on a text without those marks, where the look-ahead only costs (Cyrillic, CJK…)
_NON_WORD_PLAIN = re.compile(r"[\W_]+", re.UNICODE)
SPELLING_MARK = re.compile(f"[{_SPELLING_MARKS}]")


def key_changed_by_folds(title: str) -> bool:
    """Whether a title's key may differ from the one digestbot made before TeX maths and
    spelling marks were folded (``$``, a backslash, a Brahmic or Thai vowel sign…).
    ``store.aliases.load_refold_candidates`` selects a superset of these titles in SQL
    (``$``, a backslash, any non-ASCII character): keep the two in step."""
    return "$" in title or "\\" in title or SPELLING_MARK.search(title) is not None


# Archives of old-style ids (before April 2007), as listed by arXiv.
OLD_ARCHIVES = (
    "acc-phys",
    "adap-org",
    "alg-geom",
    "ao-sci",
    "astro-ph",
    "atom-ph",
    "bayes-an",
    "chao-dyn",
    "chem-ph",
    "cmp-lg",
    "comp-gas",
    "cond-mat",
    "cs",
    "dg-ga",
    "funct-an",
    "gr-qc",
    "hep-ex",
    "hep-lat",
    "hep-ph",
    "hep-th",
    "math",
    "math-ph",
    "mtrl-th",
    "nlin",
    "nucl-ex",
    "nucl-th",
    "patt-sol",
    "physics",
    "plasm-ph",
    "q-alg",
    "q-bio",
    "q-fin",
    "quant-ph",
    "solv-int",
    "stat",
    "supr-con",
)
_ARCHIVES = "|".join(sorted((re.escape(a) for a in OLD_ARCHIVES), key=len, reverse=True))
# New style (0704.0001 onwards): YYMM.NNNN until 2014, YYMM.NNNNN since 2015.
_ARXIV_NEW = r"(?P<new>\d\d(?:0[1-9]|1[0-2])\.\d{4,5})"
# Old style: archive[.SUBJ]/YYMMNNN; the subject class is not part of the id.
_ARXIV_OLD = (
    rf"(?P<old>(?P<archive>{_ARCHIVES})(?:\.[A-Za-z]{{2}})?/(?P<num>\d\d(?:0[1-9]|1[0-2])\d{{3}}))"
)
ARXIV_ID_RE = re.compile(
    rf"(?<![\w.\-])(?:{_ARXIV_NEW}|{_ARXIV_OLD})(?:v(?P<version>\d+))?(?![\w\-]|\.\d)",
    re.IGNORECASE,
)
# The whole text is one id (with an optional ``arXiv:`` prefix): used for free text.
_WHOLE_ID_RE = re.compile(rf"^(?:arxiv:\s*)?{ARXIV_ID_RE.pattern}$", re.IGNORECASE)
# arXiv and its own mirrors and HTML renderings (export., ar5iv.labs., ar5iv.org), and
# pages keyed by the arXiv id (Hugging Face papers, alphaXiv)
_ARXIV_HOSTS = re.compile(
    r"^(?:[a-z0-9-]+\.){0,2}(?:arxiv\.org|ar5iv\.org|huggingface\.co|hf\.co|alphaxiv\.org)$",
    re.IGNORECASE,
)
# arXiv's DOI prefix: every arXiv paper has the DOI 10.48550/arXiv.<id>
_ARXIV_DOI = "10.48550/arxiv."
_DOI_HOSTS = re.compile(r"^(?:dx\.)?doi\.org$", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.\-]*://(?P<host>[^/?#:]+)(?::\d+)?(?P<rest>[/?#].*)?$", re.I)


# Normalised titles that journals and blogs reuse for a new item in every issue: front
# matter, notices and corrections. A paper with one of these titles is keyed by its own
# link (else its text), never by its title: otherwise every journal's "Editorial" of every
# issue would be one paper. Titles with more words ("Editorial: AI in medicine") are
# ordinary titles.
GENERIC_TITLES = frozenset(
    {
        "acknowledgement to reviewers",
        "acknowledgment to reviewers",
        "addendum",
        "announcement",
        "announcements",
        "author index",
        "back matter",
        "book review",
        "book reviews",
        "call for papers",
        "contents",
        "correction",
        "corrections",
        "corrigendum",
        "cover",
        "cover image",
        "editorial",
        "editorial board",
        "editor s note",
        "editors note",
        "erratum",
        "errata",
        "expression of concern",
        "foreword",
        "from the editor",
        "from the editors",
        "front matter",
        "frontmatter",
        "guest editorial",
        "in memoriam",
        "in this issue",
        "introduction",
        "issue information",
        "letter from the editor",
        "letter to the editor",
        "masthead",
        "notice of retraction",
        "obituary",
        "preface",
        "retraction",
        "retraction notice",
        "reviewer acknowledgement",
        "reviewer acknowledgment",
        "reviewers acknowledgement",
        "table of contents",
        "thank you to our reviewers",
    }
)


def is_generic_title(key: str) -> bool:
    """Whether a normalised title is one reused for many items (``GENERIC_TITLES``)."""
    return key in GENERIC_TITLES


# ASCII fast path: NFKC leaves ASCII alone and casefold is lower(); every ASCII character
# that is not a letter or digit (``[\W_]``) becomes a space. Same result as the slow path.
_ASCII_FOLD = {code: (chr(code).lower() if chr(code).isalnum() else " ") for code in range(128)}


# TeX accents as arXiv's titles keep them (``Schr\"odinger``, ``Erd\H{o}s``, ``\'{e}``):
# the accent as a combining mark, which NFKC puts on its letter (``Schrödinger``, as a drop,
# a journal or a blog prints it).
_TEX_MARKS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
}
_TEX_ACCENT = re.compile(
    r"\{?\\(?:(?P<sym>[\"'`^~=.])\s*|(?P<word>[uvHckr])(?:\s+|(?=\{)))"
    r"(?:\{\s*(?P<braced>\\?[A-Za-z])\s*\}|(?P<bare>\\?[A-Za-z]))\}?"
)
# a control word eats the spaces after it, or an empty group, as in TeX (``\AA ngstr\"om``
# and ``\L{}\'od\'z``: Ångström, Łódź)
_TEX_LETTERS = re.compile(r"\\(?P<name>ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![A-Za-z])(?:\{\}|\s*)")
_TEX_LETTER = {
    "ss": "ß", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
    "o": "ø", "O": "Ø", "l": "ł", "L": "Ł", "i": "i", "j": "j",
}  # fmt: skip


def _tex_accent(match: re.Match[str]) -> str:
    mark = _TEX_MARKS[match.group("sym") or match.group("word")]
    letter = (match.group("braced") or match.group("bare")).lstrip("\\")
    return letter + mark


def fold_tex_accents(title: str) -> str:
    """``Schr\\"odinger`` -> ``Schrödinger`` (composed by NFKC), ``\\ss`` -> ``ß``…"""
    if "\\" not in title:
        return title
    title = _TEX_ACCENT.sub(_tex_accent, title)
    title = _TEX_LETTERS.sub(lambda m: _TEX_LETTER[m.group("name")], title)
    return unicodedata.normalize("NFC", title)


# TeX maths as arXiv's titles write it (``$\\alpha$-divergence``, ``$O(n^2)$``,
# ``$\\mathcal{O}(\\log n)$``), read as a page printing it in Unicode writes it
# (``α-divergence``, ``O(n²)``, ``𝒪(log n)``): Greek letters as letters, font commands as
# their argument, named operators as their name, other symbols (``\\leq``, ``\\infty``) as
# the punctuation they fold to; in ``$…$``, a simple super- or subscript joins its base as
# NFKC joins ``n²`` (``n^2``, ``x_{ij}``) and braces go.
_TEX_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "θ", "iota": "ι", "kappa": "κ",
    "varkappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "omicron": "ο",
    "pi": "π", "varpi": "π", "rho": "ρ", "varrho": "ρ", "sigma": "σ", "varsigma": "σ",
    "tau": "τ", "upsilon": "υ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
    "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
    "ell": "l", "aleph": "ℵ", "hbar": "ħ",
}  # fmt: skip
# commands whose argument is the text (``\\mathcal{O}``, ``\\textsc{Bert}``)
_TEX_FONTS = frozenset({
    "mathcal", "mathbb", "mathbf", "mathrm", "mathit", "mathsf", "mathtt", "mathfrak",
    "mathscr", "boldsymbol", "bm", "text", "textrm", "textbf", "textit", "textsc", "texttt",
    "textsf", "textnormal", "emph", "operatorname", "mbox", "hbox", "rm", "bf", "it", "sf",
    "tt", "cal", "em",
})  # fmt: skip
# named operators, printed as their name (``\\log n``: ``log n``)
_TEX_NAMES = frozenset({
    "log", "ln", "exp", "sin", "cos", "tan", "sinh", "cosh", "tanh", "arcsin", "arccos",
    "arctan", "max", "min", "sup", "inf", "lim", "liminf", "limsup", "det", "dim", "ker",
    "arg", "argmax", "argmin", "deg", "gcd", "Pr", "mod", "bmod",
})  # fmt: skip
_TEX_COMMAND = re.compile(r"\\(?:(?P<word>[A-Za-z]+)\s*|(?P<symbol>[^A-Za-z]))")
_TEX_MATH = re.compile(r"\$\$?([^$]+)\$\$?")
_TEX_SCRIPT = re.compile(r"[\^_](?:\{(?P<braced>[^{}]*)\}|(?P<bare>[^\s{}\\]))")


def _tex_command(match: re.Match[str]) -> str:
    word = match.group("word")
    if word is None:  # a control symbol (``\\,``, ``\\{``, ``\\%``): punctuation
        return " "
    if word in _TEX_GREEK:
        return _TEX_GREEK[word]
    if word in _TEX_FONTS:
        return ""
    if word in _TEX_NAMES:
        return f" {word} "
    return " "


def _tex_math(match: re.Match[str]) -> str:
    inner = _TEX_COMMAND.sub(_tex_command, match.group(1))
    inner = _TEX_SCRIPT.sub(lambda m: m.group("braced") or m.group("bare") or "", inner)
    return inner.replace("{", "").replace("}", "")


def fold_tex_math(title: str) -> str:
    """``$\\alpha$-divergence`` -> ``α-divergence``, ``$O(n^2)$`` -> ``O(n2)``,
    ``\\textsc{Bert}`` -> ``Bert`` (after ``fold_tex_accents``). A title without ``$``
    or a backslash is returned as it is."""
    if "$" in title:
        title = _TEX_MATH.sub(_tex_math, title)
    if "\\" in title:
        title = _TEX_COMMAND.sub(_tex_command, title)
    return title


def normalize_title_slow(title: str) -> str:
    """The reference definition: TeX accents (``fold_tex_accents``) and maths
    (``fold_tex_math``) folded, NFKC, casefold, punctuation and white space folded."""
    text = fold_tex_accents(title)
    if "$" in text or "\\" in text:
        text = fold_tex_math(text)
    text = unicodedata.normalize("NFKC", text).casefold()
    non_word = _NON_WORD if SPELLING_MARK.search(text) else _NON_WORD_PLAIN
    return " ".join(non_word.sub(" ", text).split())


@lru_cache(maxsize=16384)
def normalize_title(title: str) -> str:
    """Casefold, NFKC-normalise, fold punctuation and white space (cached: hot in ingest).

    ASCII titles without a backslash or ``$`` (nearly all) take a translate table; others
    the reference definition.
    """
    if title.isascii() and "\\" not in title and "$" not in title:
        return " ".join(title.translate(_ASCII_FOLD).split())
    return normalize_title_slow(title)


def title_id_of_key(key: str) -> str:
    """``t-`` and 12 hex digits of the SHA-256 of a normalised title."""
    return "t-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def title_id(title: str) -> str:
    return title_id_of_key(normalize_title(title))


_TRACKING = re.compile(r"^(?:utm_[a-z_]*|fbclid|gclid|mc_cid|mc_eid)$", re.IGNORECASE)


def _query(query: str) -> str:
    """A query string without tracking parameters (``utm_*``…), which feeds vary."""
    if not query:
        return query
    return "&".join(q for q in query.split("&") if q and not _TRACKING.match(q.split("=", 1)[0]))


def _link_key(link: str) -> str:
    """A link as an identity: scheme and host lowercased, no fragment, no trailing ``/``,
    no tracking parameters."""
    parts = urlsplit(link.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, _query(parts.query), ""))


def link_identity(link: str) -> str:
    """A link as compared to say whether two links are one page: ``_link_key`` without
    the scheme and a leading ``www.``."""
    parts = urlsplit(link.strip())
    host = parts.netloc.lower().removeprefix("www.")
    return urlunsplit(("", host, parts.path.rstrip("/"), _query(parts.query), ""))


def link_key(link: str) -> str | None:
    """``url:`` and the link, the key of a paper known by its own link; None for a link
    that is not http(s)."""
    if link[:8].lower().startswith(("http://", "https://")):
        return "url:" + _link_key(link)
    return None


_DOI = re.compile(r"(10\.\d{4,9}/\S+)")
_DOI_PATH = re.compile(
    r"/doi/(?:(?:abs|full|pdf|epdf|epub|fulltext)/)?(10\.\d{4,9}/[^?#\s]+)", re.IGNORECASE
)


def find_doi(text: str) -> str | None:
    """The DOI in ``doi:10.1002/x``, ``10.1002/x``, ``https://doi.org/10.1002/x`` or a
    publisher's ``…/doi/(abs/|full/)10.1002/x`` link, lowercased (DOIs ignore case);
    else None."""
    text = unquote(text.strip())
    url = _URL.match(text)
    if url is not None:
        rest = url.group("rest") or ""
        if _DOI_HOSTS.match(url.group("host")):
            found = _DOI.match(re.split(r"[?#]", rest, maxsplit=1)[0].lstrip("/"))
        else:
            found = _DOI_PATH.search(rest)
    else:
        if text[:4].lower() == "doi:":
            text = text[4:].strip()
        found = _DOI.fullmatch(text)
    return found.group(1).rstrip(".,;").lower() if found else None


def doi_key(doi: str) -> str | None:
    """``doi:`` and the DOI, the key of a paper known by its DOI; None for no DOI."""
    return "doi:" + doi.lower() if doi else None


def paper_key(title: str, *, link: str = "", abstract: str = "", doi: str = "") -> str:
    """The key a paper without an arXiv id is known by: its normalised title.

    A title with no letter or digit normalises to nothing, and would make every such
    paper one, as would a generic title (``GENERIC_TITLES``): then ``doi:`` and its DOI,
    else ``url:`` and the paper's own ``link`` (a feed item's page), else ``text:`` and a
    SHA-256 of its NFKC, casefolded, space-folded title and abstract.
    """
    key = normalize_title(title)
    if key and key not in GENERIC_TITLES:
        return key
    by_doi = doi_key(doi)
    if by_doi is not None:
        return by_doi
    by_link = link_key(link)
    if by_link is not None:
        return by_link
    return text_key(title, abstract)


def text_key(title: str, abstract: str) -> str:
    """``text:`` and a SHA-256 of the NFKC, casefolded, space-folded title and abstract: the
    key of a paper known by neither its title, a DOI nor a link of its own."""
    text = " ".join(unicodedata.normalize("NFKC", f"{title}\n{abstract}").casefold().split())
    return "text:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _found(match: re.Match[str]) -> tuple[str, int | None]:
    if match.group("new"):
        ident = match.group("new")
    else:
        ident = f"{match.group('archive').lower()}/{match.group('num')}"
    version = match.group("version")
    return ident, int(version) if version else None


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Find an arXiv id in an id, guid or link; return (id without version, version).

    A URL counts only on an arXiv (or Hugging Face papers) host; ``oai:arXiv.org:``
    guids and ``arXiv:`` references count anywhere; other text must be an id alone.
    """
    text = text.strip()
    if not text:
        return None
    url = _URL.match(text)
    if url is not None:
        if _DOI_HOSTS.match(url.group("host")):
            path = re.split(r"[?#]", url.group("rest") or "", maxsplit=1)[0]
            return _doi_arxiv_id(unquote(path).lstrip("/"))
        if not _ARXIV_HOSTS.match(url.group("host")):
            return None
        match = ARXIV_ID_RE.search(url.group("rest") or "")
        return _found(match) if match else None
    lowered = text.lower()
    if lowered.startswith(("doi:", _ARXIV_DOI)):
        return _doi_arxiv_id(text[4:] if lowered.startswith("doi:") else text)
    for prefix in ("oai:arxiv.org:", "arxiv:"):
        if lowered.startswith(prefix):
            match = ARXIV_ID_RE.match(text[len(prefix) :].lstrip())
            return _found(match) if match else None
    whole = _WHOLE_ID_RE.match(text)
    return _found(whole) if whole else None


def _doi_arxiv_id(doi: str) -> tuple[str, int | None] | None:
    """The arXiv id of an arXiv DOI (``10.48550/arXiv.2411.17700``), else None."""
    doi = doi.strip()
    if not doi.lower().startswith(_ARXIV_DOI):
        return None
    whole = _WHOLE_ID_RE.match(doi[len(_ARXIV_DOI) :])
    return _found(whole) if whole else None


def find_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """The first ``arXiv:ID`` reference inside free text (a description, a title suffix)."""
    match = re.search(rf"arxiv:\s*{ARXIV_ID_RE.pattern}", text, re.IGNORECASE)
    return _found(match) if match else None


def canonical_id(
    *, title: str, arxiv_id: str | None, link: str = "", abstract: str = "", doi: str = ""
) -> str:
    """The arXiv id, else the title id of ``paper_key`` (``doi``, ``link`` and
    ``abstract`` count only for a title with no letter or digit, or a generic one)."""
    if arxiv_id:
        return arxiv_id
    return title_id_of_key(paper_key(title, link=link, abstract=abstract, doi=doi))
