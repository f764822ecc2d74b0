"""Read every input file of a folder once: :func:`load_inputs` → :class:`Inputs` (the read stage of a run).

Everything in ``inputs/`` is read by :mod:`meta.read` and nowhere else: the registers
(:mod:`meta.read.registers`), the transcription (:mod:`meta.read.estimates`), each file through the strict reader
(:mod:`meta.read.reader`). A file breaking a rule raises :class:`meta.errors.InputError` with the file, the row
(data row, counting from 1; the file line is row + 1), the column and what to do about it; the warnings given
while reading are kept in :attr:`Inputs.notices`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from meta.read import schema
from meta.read.estimates import load_estimates
from meta.read.registers import (load_arms, load_concepts, load_harmonisation, load_legends, load_municipalities,
                                 load_outcomes, load_periods, load_source_pages, load_sources)

#: The logger every reader of ``meta.read`` warns on (through its child loggers); ``meta.cli`` prints it on stderr.
LOGGER = "meta.read"


@dataclass(frozen=True)
class Inputs:
    """Everything read from ``inputs/``, validated."""

    municipalities: pd.DataFrame
    arms: pd.DataFrame
    outcomes: pd.DataFrame
    legends: pd.DataFrame
    estimates: pd.DataFrame
    files: dict = field(default_factory=dict)  # name -> Path of every input read
    notices: tuple = ()  # every warning given while reading (conversions applied, columns ignored)
    sources: pd.DataFrame = field(default_factory=pd.DataFrame)  # sources.csv (empty when the folder has none)
    source_pages: pd.DataFrame = field(default_factory=pd.DataFrame)  # source_pages.csv
    periods: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.PERIODS.required)))
    concepts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.CONCEPTS.required)))
    harmonisation: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(schema.HARMONISATION.required)))


def load_inputs(folder: Path) -> Inputs:
    """Read and validate every register and the transcription in ``folder``.

    ``sources.csv`` is optional (without it the report cites file names and lines), and ``source_pages.csv``
    is read only beside it.
    """
    folder = Path(folder)
    files = {
        "municipalities": folder / "municipalities.csv",
        "arms": folder / "arms.csv",
        "outcomes": folder / "outcomes.csv",
        "legends": folder / "significance_legends.csv",
        "estimates": folder / "estimates.csv",
        "periods": folder / "periods.csv",
        "concepts": folder / "concepts.csv",
        "harmonisation": folder / "harmonisation.csv",
    }
    collector = _Collect()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(collector)
    try:
        municipalities = load_municipalities(files["municipalities"])
        arms = load_arms(files["arms"], municipalities)
        outcomes = load_outcomes(files["outcomes"])
        legends = load_legends(files["legends"])
        estimates = load_estimates(files["estimates"], municipalities, arms, outcomes, legends)
        sources = pd.DataFrame(columns=["input_row", *schema.SOURCES.required])
        source_pages = pd.DataFrame(columns=["input_row", *schema.SOURCE_PAGES.required])
        if (folder / "sources.csv").exists():
            files["sources"] = folder / "sources.csv"
            sources = load_sources(files["sources"], estimates)
            if (folder / "source_pages.csv").exists():
                files["source_pages"] = folder / "source_pages.csv"
                source_pages = load_source_pages(files["source_pages"], sources)
        periods = load_periods(files["periods"])
        concepts = load_concepts(files["concepts"])
        harmonisation = load_harmonisation(files["harmonisation"], municipalities, outcomes, periods, concepts)
    finally:
        logger.removeHandler(collector)
    return Inputs(municipalities, arms, outcomes, legends, estimates, files, tuple(collector.messages), sources,
                  source_pages, periods, concepts, harmonisation)


class _Collect(logging.Handler):
    """Keeps the warnings of one :func:`load_inputs` call for ``Inputs.notices``."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())
