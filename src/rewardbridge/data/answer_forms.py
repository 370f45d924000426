"""How answers are written: format variants of a right answer, near misses, truncated
reasoning, the phrasings of a final step, and the subject of an exam question by keywords.
Used by the multi-domain judgment set (``rewardbridge.data.multidomain``)."""

from __future__ import annotations

import random
import re

# subject keywords for Multi-subject-RLVR questions (no subject field); law and physics first
# so that anything matching them stays out of training when they are held out
_SUBJECTS: tuple[tuple[str, str], ...] = (
    (
        "law",
        r"\blaws?\b|legal|courts?\b|criminal|contracts?\b|litigation|plaintiff|defendant|statute|"
        r"judicial|lawsuit|constitution|procuratorate|infringement|legislat|crime|penalt|"
        r"lawyer|arbitration|patent|civil (?:law|code|procedure|action|rights)|tort|verdict",
    ),
    (
        "physics",
        r"velocity|acceleration|\bforce\b|newton|momentum|kinetic|quantum|wavelength|photon|"
        r"electron|gravitational|friction|magnetic field|refraction|thermodynamic|joule|"
        r"\bm/s\b|oscillat|optics|nucleus|radioactive",
    ),
    (
        "medicine",
        r"patients?\b|disease|clinical|symptom|diagnos|treatment|\bdrugs?\b|\bdose|therapy|"
        r"surgery|blood|infection|tumou?r|cancer|syndrome|nursing|nurse|medical|medicine|"
        r"teeth|tooth|dental|pharmac|tablet|injection|hospital|\bpain\b|tissue|artery|"
        r"bacteri|virus|acupuncture|decoction|rehabilitation|fever|chronic|acute|lesion|"
        r"gland|hormone|antibiotic|pulse|pregnan",
    ),
    (
        "economics",
        r"\btax|capital|market|bonds?\b|accounting|\bcosts?\b|enterprise|invest|price|yuan|"
        r"profit|financ|\bbank|interest rate|assets?\b|liabilit|revenue|econom|stock|audit|"
        r"budget|depreciation|inventory|compan(?:y|ies)|management|marketing|trade|currency|"
        r"monetary|insurance|real estate|income",
    ),
    (
        "engineering",
        r"construction|electrical|voltage|circuit|concrete|steel|engineering|project|building|"
        r"highway|embankment|diode|transistor|motor|power supply|cable|\bwire|pipe|welding|"
        r"machining|\bbeam|soil|foundation|network|protocol|router|computer|software|program|"
        r"signal|frequency|transformer",
    ),
    (
        "history",
        r"dynasty|century|\bwars?\b|revolution|emperor|histor|communist|socialis|marx|\bmao\b|"
        r"ancient|kingdom|republic|treaty|feudal",
    ),
    (
        "math",
        r"equation|integer|probability|derivative|integral|triangle|polynomial|matrix|"
        r"\bdigits?\b|\d+\s*[+*/×÷^]\s*\d+",
    ),
)
_SUBJECT_RES = tuple((name, re.compile(p, re.IGNORECASE)) for name, p in _SUBJECTS)

PHRASINGS = (
    "Therefore, the answer is {a}.",
    "Therefore, the answer is {a}",
    "Therefore, the answer is: {a}",
    "The answer is {a}.",
    "So the final answer is {a}.",
    "Thus, the correct answer is {a}.",
    "Answer: {a}",
    "Final answer: **{a}**",
    "{a}",
    "{a}.",
)
MATH_PHRASINGS = (*PHRASINGS, "Therefore, the answer is $\\boxed{{{a}}}$.", "$\\boxed{{{a}}}$")
TRUNCATED = (
    "Therefore, the answer is",
    "Let's analyze the question step by step.",
    "First, we need to recall the relevant definitions.",
    "To solve this, consider each option in turn.",
    "Step 1: identify what the question asks.",
    "The key point here is",
    "We know that",
    "Let me think about this carefully before answering.",
    "Based on the information above, we can conclude that",
)
UNITS = {
    "cm": "centimeters",
    "mm": "millimeters",
    "km": "kilometers",
    "m": "meters",
    "kg": "kilograms",
    "g": "grams",
    "s": "seconds",
    "h": "hours",
    "%": " percent",
    "yuan": "yuan",
    "V": "volts",
    "A": "amperes",
    "W": "watts",
    "Hz": "hertz",
    "J": "joules",
    "N": "newtons",
}
_NUMBER = re.compile(r"^(-?\d{1,3}(?:,\d{3})+|-?\d+)(\.\d+)?(\s*)([a-zA-Z%]{0,5})$")


def subject_of(question: str) -> str:
    """The subject of a Multi-subject-RLVR question by keywords: law and physics win any
    match (held out by default); otherwise the subject with most matches, else 'general'."""
    counts = {name: len(rx.findall(question)) for name, rx in _SUBJECT_RES}
    for first in ("law", "physics"):
        if counts[first]:
            return first
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "general"


def clean_answer(text: str) -> str:
    """The reference as a policy would write it: no exam blanks, single spaces, no final dot."""
    text = re.sub(r"[\u00a0\u3000]", " ", str(text))
    text = re.sub(r"[(（【]\s*[)）】]", "", text)
    return re.sub(r"\s+", " ", text).strip().rstrip(".。")


def norm_answer(text: str) -> str:
    """Case, spaces and punctuation removed (to tell two answers apart)."""
    return re.sub(r"[\W_]+", "", clean_answer(text).casefold())


def format_variants(answer: str) -> list[str]:
    """Ways to write the same answer: case, quotes, bold, articles, units, number formats."""
    a = clean_answer(answer)
    out = [a, a.lower(), a[:1].upper() + a[1:], f"**{a}**", f'"{a}"']
    if len(a) <= 40:
        out.append(a.upper())
    words = a.split()
    if words and words[0].lower() in ("the", "a", "an") and len(words) > 1:
        out.append(" ".join(words[1:]))
    elif a[:1].isalpha() and len(words) <= 6 and a.lower() not in ("true", "false"):
        out.append(f"the {a}")
    number = _NUMBER.match(a)
    if number:  # the same number written otherwise; the unit is kept (dropping it may not be)
        whole, frac, space, unit = (number.group(i) or "" for i in (1, 2, 3, 4))
        plain = whole.replace(",", "")
        sep = space or (" " if unit and unit != "%" else "")
        out += [f"{plain}{frac}{sep}{unit}", f"{plain}{frac or '.'}0{sep}{unit}"]
        if len(plain.lstrip("-")) > 3 and "," not in whole:
            out.append(f"{int(plain):,}{frac}{space}{unit}")
        if unit in UNITS and unit != "yuan":
            out.append(f"{whole}{frac} {UNITS[unit].strip()}")
    if a.lower() in ("true", "false"):
        out += ["Yes" if a.lower() == "true" else "No", a.capitalize()]
    if a.startswith("[") and a.endswith("]"):
        inner = a[1:-1]
        out += [inner, f"({inner})", a.replace(" ", "")]
    return [v for v in dict.fromkeys(out) if v]  # unique, in order


def near_misses(answer: str, rng: random.Random) -> list[str]:
    """Wrong answers close to the right one: a changed number, or the negated answer."""
    a = clean_answer(answer)
    number = _NUMBER.match(a)
    out = []
    if number:
        whole, frac, space, unit = (number.group(i) or "" for i in (1, 2, 3, 4))
        whole = whole.replace(",", "")
        unit = space + unit
        n = int(whole)
        changed = {n + 1, n - 1 if n > 1 else n + 2, n * 2 if n else 3, n + 10}
        out += [f"{m}{frac}{unit}" for m in sorted(changed)]
        if frac:
            digits = list(frac[1:])
            digits[-1] = str((int(digits[-1]) + 1 + rng.randrange(8)) % 10)
            out.append(f"{whole}.{''.join(digits)}{unit}")
    elif a.lower() in ("true", "false"):
        out.append("False" if a.lower() == "true" else "True")
    else:
        out += [f"not {a}", f"anything except {a}"]
    return [o for o in out if norm_answer(o) != norm_answer(a)]
