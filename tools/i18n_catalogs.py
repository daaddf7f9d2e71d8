"""Regenerate the message catalogs: ``python tools/i18n_catalogs.py [extract|update|compile|all]``.

* ``extract`` reads every msgid out of ``bot/`` (the keywords of ``bot.messages.i18n.EXTRACT_KEYWORDS``;
  the sandboxes and migrations are not user-facing) into ``bot/locale/confbot.pot``;
* ``update`` merges the template into each language's ``.po`` (new msgids arrive untranslated, changed
  ones fuzzy; ``tests/unit/test_i18n.py`` fails until a person translates them);
* ``compile`` writes each ``.mo`` from its ``.po`` (committed with it: the wheel ships both);
* ``all`` (the default) does the three in order.

The same as ``pybabel extract -F babel.cfg -k Text -k N_ -c TRANSLATORS: -o bot/locale/confbot.pot bot``
then ``pybabel update``/``compile`` with ``-D confbot -d bot/locale``; this script keeps the keyword list
in one place (the test uses it too; pybabel knows ``pgettext`` by default).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from bot.messages.i18n import DOMAIN, EXTRACT_KEYWORDS, LOCALE_DIR, SUPPORTED

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bot"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
METHOD_MAP = [("sandbox/**.py", "ignore"), ("store/migrations/**.py", "ignore"), ("**.py", "python")]
TRANSLATED = tuple(locale for locale in SUPPORTED if locale != "en")


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def extracted() -> Catalog:
    """Every msgid in the source, with where it is used and any ``# TRANSLATORS:`` comment."""
    catalog = Catalog(project="confbot", domain=DOMAIN, msgid_bugs_address="", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(SOURCE),
        METHOD_MAP,
        keywords=EXTRACT_KEYWORDS,
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    ):
        catalog.add(
            message,
            None,
            [(f"bot/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def extract() -> None:
    with TEMPLATE.open("wb") as out:
        write_po(out, extracted(), width=110, omit_header=False, sort_output=True)


def update() -> None:
    with TEMPLATE.open("rb") as source:
        template = read_po(source)
    for locale in TRANSLATED:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as source:
                catalog = read_po(source, locale=locale, domain=DOMAIN)
        else:
            catalog = Catalog(locale=locale, domain=DOMAIN, project="confbot", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as out:
            write_po(out, catalog, width=110, sort_output=True, ignore_obsolete=True)


def compile_all() -> None:
    for locale in TRANSLATED:
        with po_path(locale).open("rb") as source:
            catalog = read_po(source, locale=locale, domain=DOMAIN)
        with po_path(locale).with_suffix(".mo").open("wb") as out:
            write_mo(out, catalog, use_fuzzy=False)


def main(argv: list[str]) -> int:
    steps = {"extract": [extract], "update": [update], "compile": [compile_all]}
    chosen = steps.get(argv[0], None) if argv else [extract, update, compile_all]
    if chosen is None:
        print(__doc__)
        return 2
    for step in chosen:
        step()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
