"""Words of the report and figures in Dutch (default, as the ministry reads it) and English.

Outcome and arm names come from the registers (``label_nl``/``label_en``, ``name_nl``/``name_en``);
everything else the report, the figures and the console say is in one message catalogue, ``messages.toml`` beside
this module (:data:`TEXT`, read with :func:`t`; vocabulary groups with :func:`word`); the codes the stages write
(SE methods, tests, models, exclusion reasons) are put into words here (:data:`WORDS`, :data:`REASONS`).
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from pathlib import Path

LANGS = ("nl", "en")
DEFAULT_LANG = "nl"

#: The message catalogue: ``{key: {"nl": text, "en": text}}``, a text HTML with ``{name}`` placeholders
#: (:meth:`str.format`), a list (navigation, table heads) or a vocabulary group ``{code: word}``.
MESSAGES = Path(__file__).with_name("messages.toml")


def load_messages(path: Path = MESSAGES) -> dict:
    """The catalogue at ``path``; every key must have a text in every language of :data:`LANGS`."""
    with open(path, "rb") as f:
        text = tomllib.load(f)
    incomplete = sorted(k for k, v in text.items() if set(v) != set(LANGS))
    if incomplete:
        raise ValueError(f"{path.name}: not exactly one text per language ({', '.join(LANGS)}): "
                         f"{', '.join(incomplete)}")
    return text


TEXT = load_messages()


def t(key: str, lang: str, **fmt):
    """The text ``key`` in ``lang`` (formatted with ``fmt`` when given)."""
    if lang not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}, not {lang!r}")
    value = TEXT[key][lang]
    return value.format(**fmt) if fmt and isinstance(value, str) else value


def word(group: str, value: str, lang: str) -> str:
    """Translate a vocabulary word (arm class, status, component); unchanged when not listed."""
    return TEXT[group][lang].get(value, value)


def outcome_labels(outcomes, lang: str) -> dict:
    """{outcome code: its label in ``lang``} from the outcome register (English where a Dutch label is blank)."""
    col = "label_nl" if lang == "nl" else "label_en"
    return {code: (label or en) for code, label, en in zip(outcomes["outcome"], outcomes[col], outcomes["label_en"])}


def arm_class_label(arm_class: str, lang: str) -> str:
    return word("arm_class", arm_class, lang).replace("_", " ")


#: The catalogue keys of a unit's words, per use: on a figure axis ("schaalpunten, 0–10") and as a name in a table
#: ("schaal 0–10"); each ``(percentage points, scale not stated, scale lo–hi with {lo} and {hi})``.
UNIT_WORDS = {"axis": ("unit_pp", "unit_unknown_scale", "unit_scale_range"),
              "name": ("unit_name_pp", "unit_name_unknown", "unit_name_scale")}


def unit_words(unit: str, lang: str, use: str = "axis") -> str:
    """A unit code in words (:data:`UNIT_WORDS`): ``percentage_points``, ``scale_unknown`` or ``scale_LO_HI``;
    any other code with its underscores as spaces."""
    pp, unknown, scale = UNIT_WORDS[use]
    if unit == "percentage_points":
        return t(pp, lang)
    if unit == "scale_unknown":
        return t(unknown, lang)
    if unit.startswith("scale_"):
        lo, _, hi = unit.removeprefix("scale_").partition("_")
        return t(scale, lang, lo=lo, hi=hi)
    return unit.replace("_", " ")


def components_label(components: str, lang: str) -> str:
    """``exemption + release 50% ≤ €200/month`` in the report's language."""
    if lang == "en":
        return components
    out = []
    for part in components.split(" + "):
        head, _, rest = part.partition(" ")
        if head == "release":
            out.append(("vrijlating " + rest.replace("/month", "/maand")).strip())
        else:
            out.append(word("component", part, lang))
    return " + ".join(out)


# --------------------------------------------------------------------------- #
# numbers: one formatter per language (Babel's CLDR patterns, not hand-rolled)
# --------------------------------------------------------------------------- #
LOCALES = {"nl": "nl_NL", "en": "en_GB"}
MISSING = "—"


def _is_missing(x) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def fmt_num(x, digits: int = 1, lang: str = DEFAULT_LANG, missing: str = MISSING, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals in the notation of ``lang`` (nl: ``-1.234,5``; en: ``-1,234.5``).

    Babel's CLDR decimal pattern of the locale (decimal comma and point for thousands in Dutch, as the
    Taalunie prescribes); ``missing`` for None/NaN; ``sign`` adds ``+`` to positive numbers.
    """
    if _is_missing(x):
        return missing
    return _fmt_float(float(x), digits, sign, lang)


@functools.lru_cache(maxsize=1 << 14)
def _fmt_float(x: float, digits: int, sign: bool, lang: str) -> str:
    """:func:`fmt_num` of a float, kept: Babel's pattern costs ~11 µs a number (~40 µs under a profiler) and the
    report prints about half of its ~1,100 numbers more than once (a cell's estimate in the findings, the Kerntabel
    and the decisions). The text is a function of the value (0.0 and -0.0, equal keys, both print "0")."""
    if round(x, digits) == 0:
        x = 0.0  # no "-0,0"
    pattern, locale = _number_pattern(digits, sign, lang)
    return pattern.apply(x, locale)  # what babel.numbers.format_decimal(x, pattern, locale) does


@functools.lru_cache(maxsize=None)
def _number_pattern(digits: int, sign: bool, lang: str):
    """Babel's parsed decimal pattern and locale for :func:`fmt_num` (parsed once, not per number)."""
    from babel import Locale
    from babel.numbers import parse_pattern

    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    if sign:
        pattern = f"+{pattern};-{pattern}"
    return parse_pattern(pattern), Locale.parse(LOCALES[lang])


#: Between the bounds of an interval: a semicolon where the comma is the decimal sign.
INTERVAL_SEP = {"nl": "; ", "en": ", "}


def fmt_interval(low, high, digits: int = 1, lang: str = DEFAULT_LANG) -> str:
    """``[low, high]`` in English, ``[low; high]`` in Dutch (a comma is the decimal sign there)."""
    return f"[{fmt_num(low, digits, lang)}{INTERVAL_SEP[lang]}{fmt_num(high, digits, lang)}]"


def fmt_p(p, lang: str = DEFAULT_LANG) -> str:
    """A p-value to three decimals, ``<0,001`` (nl) / ``<0.001`` (en) below that."""
    if _is_missing(p):
        return MISSING
    return "<" + fmt_num(0.001, 3, lang) if float(p) < 0.001 else fmt_num(p, 3, lang)


def fmt_g(x, lang: str = DEFAULT_LANG) -> str:
    """A short number as written in a setting (``0.05`` → ``0,05``): up to 6 significant digits, no trailing zeros."""
    if _is_missing(x):
        return MISSING
    return _fmt_short(f"{float(x):.6g}", lang)


@functools.lru_cache(maxsize=1 << 12)
def _fmt_short(short: str, lang: str) -> str:
    """:func:`fmt_g` of a number written with 6 significant digits, kept (settings, ticks and p ranges repeat; the
    text is the key, so -0 and 0 stay apart)."""
    from babel.numbers import format_decimal

    return format_decimal(float(short), format="#,##0.######", locale=LOCALES[lang])


def tick_text(lang: str):
    """A matplotlib tick formatter function ``(value, pos) -> text`` in the notation of ``lang``."""
    return lambda v, _pos=None: fmt_g(round(float(v), 6), lang).replace("-", "−")


#: A printed number: sign, digits, one decimal separator (point or comma) and decimals, an optional percent sign.
PRINTED_NUMBER = re.compile(r"^([+\-−]?\d+)(?:[.,](\d+))?(%?)$")
#: A footnote reference at the end of a printed mark: ``1)``.
FOOTNOTE_MARK = re.compile(r"(\d+)\)$")


def printed_text(printed: str, significance: str, lang: str = DEFAULT_LANG) -> str:
    """A printed token for a reader of ``lang``: the number with the language's decimal sign, its significance mark
    attached, a footnote reference written out (``4.291)`` → ``4,29 (voetnoot 1)``, ``6.36*1)`` → ``6,36* (voetnoot
    1)``, ``7.6%`` → ``7,6%``; English ``4.29 (footnote 1)``). A token that is not a number followed by its mark is
    returned unchanged. The CSV outputs and the workbook keep the token exactly as printed.
    """
    printed, mark = str(printed), str(significance or "")
    number = printed[: len(printed) - len(mark)] if mark and printed.endswith(mark) else printed
    found = PRINTED_NUMBER.match(number)
    if found is None or (mark and number == printed):
        return printed
    whole, decimals, percent = found.groups()
    number = whole + ({"nl": ",", "en": "."}[lang] + decimals if decimals else "") + percent
    note = FOOTNOTE_MARK.search(mark)
    if note:
        mark = mark[: note.start()]
    return number + mark + (" (" + t("footnote_ref", lang, n=note.group(1)) + ")" if note else "")


def fmt_p_range(at_least, below, lang: str = DEFAULT_LANG) -> str:
    """A p-value known only as a range from a significance mark: ``<0,05``, ``0,05–0,1`` or ``≥0,1``."""
    if not _is_missing(below) and (_is_missing(at_least) or float(at_least) == 0):
        return "<" + fmt_g(below, lang)
    if not _is_missing(below):
        return f"{fmt_g(at_least, lang)}–{fmt_g(below, lang)}"
    return "≥" + fmt_g(at_least, lang)


# --------------------------------------------------------------------------- #
# methods and codes in words
# --------------------------------------------------------------------------- #
WORDS = {
    "se_method": {
        "nl": {"reported_se": "gedrukte SE", "from_ci": "uit betrouwbaarheidsinterval", "from_p": "uit p-waarde",
               "from_shares_binomial": "uit aandelen en N",
               "from_shares_binomial_and_marks": "uit aandelen en N, getoetst aan het teken",
               "from_significance_marks": "uit significantietekens",
               "from_range_bound": "bovengrens uit bereik en respondenten"},
        "en": {"reported_se": "printed SE", "from_ci": "from the confidence interval", "from_p": "from the p-value",
               "from_shares_binomial": "from shares and N",
               "from_shares_binomial_and_marks": "from shares and N, checked against the mark",
               "from_significance_marks": "from significance marks",
               "from_range_bound": "upper bound from range and respondents"}},
    "test": {
        "nl": {"z": "Wald (z)", "knha": "Hartung-Knapp", "adhoc": "Hartung-Knapp, ad-hocvariant"},
        "en": {"z": "Wald (z)", "knha": "Hartung-Knapp", "adhoc": "Hartung-Knapp, ad hoc variant"}},
    "policy": {"nl": {"central": "centraal", "conservative": "conservatief"},
               "en": {"central": "central", "conservative": "conservative"}},
    "outcome_level": {"nl": {"strict": "strikte uitkomst", "concept": "LOEP-concept"},
                      "en": {"strict": "strict outcome", "concept": "LOEP concept"}},
    "model": {
        "nl": {"loep": "LOEP-model", "raw_shares": "ruwe aandelen", "logit_incl_dropouts": "logit, met uitvallers",
               "logit_excl_dropouts": "logit, zonder uitvallers", "basis": "basismodel", "extra": "uitgebreid model",
               "ols_adjusted_mean": "OLS, gecorrigeerd gemiddelde", "ols_interaction": "OLS met interactie",
               "ols_main_effect": "OLS, hoofdeffect", "ols_interaction_time_control": "OLS met interactie en tijd",
               "ols_interaction_baseline": "OLS met interactie en nulmeting", "logit_me": "logit, marginaal effect",
               "logit_me_duration_interaction": "logit, marginaal effect met duurinteractie",
               "matching_nn_att": "matching (naaste buur, ATT)", "matching_nn_ate": "matching (naaste buur, ATE)",
               "matching_ps_att": "matching (propensityscore, ATT)", "matching_ps_ate": "matching (propensityscore, ATE)",
               "raw_diff_text": "ruw verschil (tekst)", "logit_contrast_text": "logit-contrast (tekst)"},
        "en": {"loep": "LOEP model", "raw_shares": "raw shares", "logit_incl_dropouts": "logit, incl. drop-outs",
               "logit_excl_dropouts": "logit, excl. drop-outs", "basis": "basic model", "extra": "extended model",
               "ols_adjusted_mean": "OLS, adjusted mean", "ols_interaction": "OLS with interaction",
               "ols_main_effect": "OLS, main effect", "ols_interaction_time_control": "OLS with interaction and time",
               "ols_interaction_baseline": "OLS with interaction and baseline", "logit_me": "logit, marginal effect",
               "logit_me_duration_interaction": "logit, marginal effect with duration interaction",
               "matching_nn_att": "matching (nearest neighbour, ATT)", "matching_nn_ate": "matching (nearest neighbour, ATE)",
               "matching_ps_att": "matching (propensity score, ATT)", "matching_ps_ate": "matching (propensity score, ATE)",
               "raw_diff_text": "raw difference (text)", "logit_contrast_text": "logit contrast (text)"}},
}


def words(group: str, code: str, lang: str) -> str:
    """The words for a code (SE method, test, SE policy, model column); the code with spaces when not listed."""
    value = WORDS[group][lang].get(code)
    return value if value is not None else str(code).replace("_", " ")


def method_words(method: str, test: str, lang: str) -> str:
    """``REML + Hartung-Knapp``: the estimator (an abbreviation in both languages) and the test in words."""
    return f"{method} + {words('test', test, lang)}"


def spec_words(group: str, spec: str, lang: str, names: dict | None = None) -> str:
    """One sensitivity specification (``group``, ``spec`` as in sensitivity.csv) in words."""
    names = names or {}
    if group in ("main", "classical") and " + " in spec:
        method, _, test = spec.partition(" + ")
        return method_words(method, test, lang)
    if group == "test":
        return words("test", spec, lang)
    if group == "estimator":
        return word("estimator", spec, lang)
    if group == "SE policy":
        return words("policy", spec, lang)
    if group == "model column":
        return words("model", spec, lang)
    if group == "leave one out" and spec.startswith("without "):
        muni = spec.removeprefix("without ")
        name = names.get(muni, muni.capitalize())  # Dutch: the group already says "gemeente weggelaten"
        return name if lang == "nl" else "without " + name
    if group == "Bayesian":
        m = re.fullmatch(r"half-normal τ prior, scale ([0-9.]+)", spec)
        if m:
            return (f"half-normale prior op τ, schaal {fmt_g(float(m.group(1)), lang)}" if lang == "nl"
                    else f"half-normal prior on τ, scale {fmt_g(float(m.group(1)), lang)}")
    if group == "outcome definition":
        m = re.fullmatch(r"strict: \S+ (\d+) m", spec)
        if m:
            return (f"strikt niveau (één uitkomstcode, {m.group(1)} mnd)" if lang == "nl"
                    else f"strict level (one outcome code, {m.group(1)} months)")
        if spec == "harmonisation: sensitivity mappings":
            return ("koppelingen voor de gevoeligheidsanalyse" if lang == "nl"
                    else "harmonisation: alternative mappings")
    if group == "main" and spec == "Bayesian headline (plan's τ prior)" and lang == "nl":
        return "Bayesiaanse kern (τ-prior van het plan)"
    if group == "prior":
        m = re.fullmatch(r"half-normal, scale × ([0-9.]+) \(([0-9.]+)\)", spec)
        if m:
            return (f"half-normaal, schaal × {fmt_g(float(m.group(1)), lang)} ({fmt_g(float(m.group(2)), lang)})"
                    if lang == "nl" else spec)
        m = re.fullmatch(r"half-Cauchy, same scale \(([0-9.]+)\)", spec)
        if m:
            return (f"half-Cauchy, zelfde schaal ({fmt_g(float(m.group(1)), lang)})" if lang == "nl" else spec)
    if group == "survey contrast":
        return {"nl": {"wave": "verschil op het meetmoment", "change": "verandering sinds de nulmeting"},
                "en": {"wave": "difference at the wave", "change": "change since baseline"}}[lang].get(spec, spec)
    if lang == "nl":
        return {"concept level": "LOEP-concept", "excluded": "weggelaten"}.get(spec, spec)
    return spec


def changed_by_words(changed_by, lang: str, names: dict | None = None) -> str:
    """robustness.csv's ``changed_by`` (``group: spec;group: spec``) in words; ``—`` when empty."""
    if not isinstance(changed_by, str) or not changed_by:
        return MISSING
    parts = []
    for item in str(changed_by).split(";"):
        group, _, spec = item.partition(": ")
        parts.append(f"{word('spec_group', group, lang)}: {spec_words(group, spec, lang, names)}")
    return "; ".join(parts)


# Free-text sentences the stages write (exclusion reasons, component-model notes) → Dutch. Ordered; the first
# matching pattern wins; ``{code}`` is the reason's machine code (excluded.csv keeps it in ``reason_code``).
REASONS = (
    ("unit_not_convertible", r"unit '(?P<a>[^']*)' cannot be converted to the outcome's unit '(?P<b>[^']*)'",
     "eenheid kan niet worden omgerekend naar de eenheid van de uitkomst"),
    ("control_level", r"level of the control group; used as the comparator share of derived differences.*",
     "niveau van de controlegroep; gebruikt als vergelijkingsaandeel voor afgeleide verschillen"),
    ("reference_group_level", r"level of a non-randomised reference group, not an effect.*",
     "niveau van een niet-gerandomiseerde referentiegroep, geen effect"),
    ("group_level", r"level of one group without a control level and N to difference it against.*",
     "niveau van één groep zonder niveau en N van de controlegroep om het verschil mee te berekenen"),
    ("no_legend", r"no legend for mark '(?P<mark>[^']*)' in (?P<table>.*)",
     "geen legenda voor het significantieteken in deze tabel"),
    ("change_over_time", r"change over time within one group.*", "verandering in de tijd binnen één groep, geen "
                                                                  "vergelijking tussen armen"),
    ("reference_group_comparison", r"comparison with a non-randomised reference group.*",
     "vergelijking met een niet-gerandomiseerde referentiegroep (wordt nooit als effect gepoold)"),
    ("between_arm_contrast", r"between-arm contrast .*", "verschil tussen twee armen, niet t.o.v. de controlegroep"),
    ("several_arms_pooled", r"contrast of several arms pooled together.*", "contrast van meerdere armen samen, "
                                                                            "niet van één arm"),
    ("arm_not_randomised", r"arm is not randomised.*", "arm is niet gerandomiseerd"),
    ("no_se_change_marks", r"no standard error can be derived: the marks test changes over time.*",
     "geen standaardfout af te leiden: de significantietekens toetsen de verandering in de tijd, niet dit contrast"),
    ("no_se", r"no standard error can be derived.*", "geen standaardfout af te leiden: het significantieteken "
                                                     "begrenst de SE alleen van onderen en geen steekproefomvang "
                                                     "begrenst haar van boven"),
    ("se_contradicts_mark", r"standard error contradicts the printed mark.*",
     "standaardfout in strijd met het gedrukte significantieteken"),
    ("mean_all_waves", r"adjusted mean averaged over all measurements.*",
     "gecorrigeerd gemiddelde over alle metingen (nulmeting inbegrepen), geen effect op één meetmoment"),
    ("baseline_mean", r"baseline \(nulmeting\) adjusted mean.*",
     "gecorrigeerd gemiddelde bij de nulmeting: een niveau vóór de behandeling, geen effect"),
    ("adjusted_mean_used", r"adjusted mean (?:of the control group at this wave|at baseline).*; used in the derived.*",
     "gecorrigeerd gemiddelde; gebruikt voor het afgeleide verschil tussen arm en controlegroep"),
    ("no_harmonisation_row", r"no row in harmonisation\.csv.*",
     "geen rij in harmonisation.csv voor deze gemeente, uitkomst en horizon"),
    ("unmapped", r"deliberately unmapped in harmonisation\.csv.*",
     "bewust niet aan een LOEP-concept gekoppeld (de reden staat in harmonisation.csv)"),
    ("sensitivity_mapping", r"sensitivity mapping in harmonisation\.csv.*",
     "koppeling voor de gevoeligheidsanalyse; alleen daar gepoold"),
    ("primary_mapping_replaced", r"primary mapping in harmonisation\.csv; replaced.*",
     "hoofdkoppeling, in deze specificatie vervangen door de koppeling voor de gevoeligheidsanalyse"),
    ("period_not_in_plan", r"period not in the plan's periods.*", "periode niet in het analyseplan"),
    ("outcome_not_in_plan", r"outcome not in the plan's outcomes.*", "uitkomst niet in het analyseplan"),
    ("model_not_in_plan", r"model column not in the plan's model_preference.*",
     "modelkolom niet in de modelvoorkeur van het analyseplan"),
    ("population_not_in_plan", r"population not in the plan.*", "populatie niet in het analyseplan"),
    ("horizon_not_in_plan", r"horizon not in the plan's horizons.*", "horizon niet in het analyseplan"),
    ("arm_class_not_in_plan", r"arm class not in the plan.*", "armklasse niet in het analyseplan"),
    ("represented_by_other_row", r"another row represents .*",
     "een andere rij vertegenwoordigt deze arm in deze cel (voorkeursmodel, populatie, uitkomst of gedrukt effect)"),
    ("derived_from_marks_excluded", r".*derived from significance marks.*excluded.*",
     "SE uit significantietekens, en het plan laat die weg"),
    ("not_converged", r"cell could not be pooled.*", "cel kon niet worden gepoold: de schatter convergeerde niet"),
)
#: English wording where the stage's sentence names codes
REASONS_EN = {
    "unit_not_convertible": "unit cannot be converted to the outcome's unit",
    "between_arm_contrast": "between-arm contrast, not against the control group",
    "model_not_in_plan": "model column not in the plan's model preference",
    "represented_by_other_row": "another row represents this arm in this cell (preferred model, population, outcome "
                                "or printed effect)",
    "no_legend": "no legend for the significance mark in this table",
}
_REASONS = tuple((code, re.compile(pat), nl) for code, pat, nl in REASONS)


def reason_code(reason: str) -> str:
    """The machine code of an exclusion reason (``other`` when the sentence is not known)."""
    return _reason_code(str(reason))


@functools.lru_cache(maxsize=1 << 12)
def _reason_code(reason: str) -> str:
    """:func:`reason_code` of a text, kept: a run's ~470 excluded rows give ~110 distinct reasons (matched against
    every pattern of :data:`REASONS` for the tables, the report and the workbook)."""
    for code, pat, _ in _REASONS:
        if pat.fullmatch(reason):
            return code
    return "other"


def reason_words(reason: str, lang: str) -> str:
    """An exclusion reason in ``lang`` (the English sentence as written; in Dutch from :data:`REASONS`)."""
    return _reason_words(str(reason), lang)


@functools.lru_cache(maxsize=1 << 12)
def _reason_words(reason: str, lang: str) -> str:
    """:func:`reason_words` of a text, kept (as :func:`_reason_code`)."""
    if lang == "en":
        return REASONS_EN.get(_reason_code(reason), re.sub(r"\s*\(input rows? [\d, ]+.*\)", "", reason))
    for _, pat, nl in _REASONS:
        if pat.fullmatch(reason):
            return nl
    return reason


def word_list(items, lang: str) -> str:
    """``items`` as a sentence lists them: "a, b en c" (Dutch), "a, b and c" (English); one item as it is, none
    as ""."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (" en " if lang == "nl" else " and ") + items[-1]


#: Component-model notes (``components.csv`` ``statement``, English) → message key: whole sentences first, else each
#: '; '-clause of the sentence. Groups named ``components*`` are component lists, ``combos`` a list of combinations.
NOTE_SENTENCES = tuple((re.compile(p), k) for p, k in (
    (r"(?P<components>.+?) are not separately identifiable: the available arms give only (?P<combos>.+?), so only "
     r"(?P<rank>\d+) independent combinations? of these (?P<n>\d+) components can be estimated", "component_not_separable"),
    (r"(?P<components>.+?) (?:is|are) part of every one of these arms, so the arms never show (?P<components2>.+?) "
     r"without", "component_in_every_arm"),
    (r"(?P<components>.+?) are always given together in the available arms", "component_always_together"),
    (r"(?P<components>.+?) is not given in any of the available arms", "component_in_no_arm")))
NOTE_CLAUSES = tuple((re.compile(p), k) for p, k in (
    (r"all components are identifiable from all municipalities' arms together", "component_all_together"),
    (r"all components are identifiable", "component_all_identifiable"),
    (r"as many arms as components", "component_exact"),
    (r"between-municipality variance not estimable", "component_no_tau2"),
    (r"(?P<components>.+?) occur\(s\) in one municipality only", "component_one_municipality"),
    (r"not fitted", "component_not_fitted"),
    (r"(?P<components>.+?) identifiable only by comparing municipalities", "component_across_only"),
    (r"(?P<muni>.+?) alone does not separate (?P<components>[^:]*)", "component_within_not")))


def _component_words(text: str, lang: str, split: str = r",| and | or ", join=None) -> str:
    """'exemption, release and intensive' → 'ontheffing, vrijlating en intensieve begeleiding' (``join``: how the
    words are joined instead of as a list, :func:`word_list`, of those that are not blank)."""
    words_ = [word("component", c.strip().replace("_", " "), lang) for c in re.split(split, text)]
    if join is not None:
        return join(words_)
    return word_list([w.strip() for w in words_ if w.strip()], lang)


def _note_text(part: str, patterns, lang: str) -> str | None:
    """``part`` in ``lang`` by the first of ``patterns`` that matches its start; None when none does."""
    for pat, key in patterns:
        m = pat.match(part)
        if m:
            fill = {k: _component_words(v, lang) if k.startswith("components") else v for k, v in m.groupdict().items()}
            if "combos" in fill:  # "exemption + release and intensive + release"
                combos = [_component_words(c, lang, r" \+ ", " + ".join).strip()
                          for c in re.split(r", | and ", fill["combos"])]
                fill["combos"] = word_list([c for c in combos if c], lang)
            return t(key, lang, **fill)
    return None


def component_note_words(note, lang: str, names: dict | None = None) -> str:
    """A component-model note (``components.csv`` ``statement``) in ``lang`` (:data:`NOTE_SENTENCES`,
    :data:`NOTE_CLAUSES`); ``names`` ({code: name}) names the municipalities ("municipality nijmegen" → "Nijmegen")."""
    if isinstance(note, str) and names is not None:
        note = re.sub(r"(?<![-\w])municipality (\w+)(?= alone )", lambda m: names.get(m.group(1), m.group(1)), note)
    if lang == "en" or not isinstance(note, str) or not note:
        return note if isinstance(note, str) and note else MISSING
    if note.startswith("not fitted"):  # the solver's own message follows; components.csv keeps it
        return t("component_not_fitted_note", lang)
    out = [_note_text(sentence, NOTE_SENTENCES, lang)
           or "; ".join(_note_text(c, NOTE_CLAUSES, lang) or c for c in sentence.split("; "))
           for sentence in re.split(r"(?<=\.) ", note)]
    return " ".join([out[0], *(x[:1].upper() + x[1:] for x in out[1:])])  # a sentence after a full stop: capital


def period_label(period: str, periods, lang: str) -> str:
    """A cell's period in ``lang``: ``m16`` (strict level) → '16 mnd'; a register period → its label and months."""
    if period.startswith("m") and period[1:].isdigit():
        return f"{period[1:]} {t('months', lang)}"
    if periods is not None:  # the register's first row of the period (a plain scan: called per table cell)
        for code, nl, en, lo, hi in zip(periods["period"], periods["label_nl"], periods["label_en"],
                                        periods["month_min"], periods["month_max"]):
            if code == period:
                return f"{nl if lang == 'nl' else en} ({lo}–{hi} {t('months', lang)})"
    return period.replace("_", " ")  # without the register: the code in words


def period_labels(values, periods, lang: str) -> list[str]:
    """:func:`period_label` of each of ``values`` (a table's period column), each distinct period looked up once."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)  # a Series' texts at once
    labels = {p: period_label(p, periods, lang) for p in dict.fromkeys(values)}
    return [labels[p] for p in values]


def concept_labels(concepts, lang: str) -> dict:
    """{concept: its label in ``lang``} from the concept register."""
    if concepts is None:
        return {}
    col = "label_nl" if lang == "nl" else "label_en"
    return dict(zip(concepts["concept"], concepts[col]))


def cell_labels(inputs, lang: str) -> dict:
    """Labels of outcome codes and of concepts (a cell's ``outcome_key`` is one or the other)."""
    return {**outcome_labels(inputs.outcomes, lang), **concept_labels(inputs.concepts, lang)}
