"""Name matching in both vocabularies, what a name counts as in each canonical
vocabulary, and extension by an extra file."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.errors import ConfigError
from parsers.model import Classification
from parsers.taxonomy import ECSIRT, RSIT, Match, Taxonomy, TaxonomyError, load_taxonomy

TAXONOMY = load_taxonomy()
IN_RSIT = load_taxonomy(canonical=RSIT)


def test_every_class_and_type_of_each_vocabulary_resolves_by_name_and_by_slug() -> None:
    for vocabulary in TAXONOMY.vocabularies:
        for cls in vocabulary.classes:
            spellings = [((cls.name, None), (cls.slug, None), None)] + [
                ((cls.name, typ.name), (cls.slug, typ.slug), typ.slug) for typ in cls.types
            ]
            for by_name, by_slug, type_slug in spellings:
                sent = Classification(vocabulary.id, cls.slug, type_slug)
                for class_name, type_name in (by_name, by_slug):
                    match = TAXONOMY.lookup(class_name, type_name, vocabulary.id)
                    assert match is not None and match.sent == sent, (class_name, type_name)


def test_the_canonical_vocabulary_counts_its_own_names_as_sent() -> None:
    for taxonomy in (TAXONOMY, IN_RSIT):
        for key, _ in taxonomy.categories():
            sent = Classification(taxonomy.canonical, *key)
            assert taxonomy.counts_as(sent) == Match(sent, sent, True)


@pytest.mark.parametrize(
    ("cls", "typ"),
    [
        ("malicious code", "VIRUS"),
        ("MALICIOUS_CODE", "virus"),
        ("  Malicious - Code ", " Virus "),
        ("malicious__code", "virus"),
        ("Malicious\tCode", "Virus"),
    ],
)
def test_case_and_separators_are_equivalent(cls: str, typ: str) -> None:
    assert TAXONOMY.resolve(cls, typ) == ("malicious-code", "virus")


def test_names_with_slashes_and_spellings() -> None:
    child = ("abusive-content", "child-sexual-violence")
    assert TAXONOMY.resolve("Abusive Content", "Child/Sexual/Violence/...") == child
    assert TAXONOMY.resolve("abusive content", "child / sexual / violence") == child
    assert TAXONOMY.resolve("Malicious Code", "Dialer") == ("malicious-code", "dialler")
    assert TAXONOMY.resolve("Fraud", "Unauthorised use of resources") == (
        "fraud",
        "unauthorised-use",
    )
    violence = ("abusive-content", "violence")
    found = IN_RSIT.resolve("Abusive Content", "(Child) Sexual Exploitation/Sexual/Violent Content")
    assert found == violence
    assert IN_RSIT.resolve("abusive-content", "Child Porn/Sexual/Violent Content") == violence


@pytest.mark.parametrize(
    ("cls", "typ", "sent", "in_ecsirt", "in_rsit"),
    [
        ("Malicious Code", "Virus", (ECSIRT, "malicious-code", "virus"),
         ("malicious-code", "virus"), ("malicious-code", None)),
        ("malicious-code", "infected-system", (RSIT, "malicious-code", "infected-system"),
         ("malicious-code", None), ("malicious-code", "infected-system")),
        ("vulnerable", "weak-crypto", (RSIT, "vulnerable", "weak-crypto"),
         ("other", None), ("vulnerable", "weak-crypto")),
        ("Fraud", "Phishing", (RSIT, "fraud", "phishing"),
         ("fraud", "masquerade"), ("fraud", "phishing")),
        ("test", "test", (RSIT, "test", "test"), ("other", None), ("test", "test")),
        ("Other", None, (ECSIRT, "other", None), ("other", None), ("other", None)),
        ("Other", "Other", (RSIT, "other", "other"), ("other", None), ("other", "other")),
        ("Information Gathering", "Scanning", (ECSIRT, "information-gathering", "scanning"),
         ("information-gathering", "scanning"), ("information-gathering", "scanner")),
        ("Information Content Security", "Leak of confidential information",
         (RSIT, "information-content-security", "data-leak"),
         ("information-security", None), ("information-content-security", "data-leak")),
        ("Availability", "Outage", (RSIT, "availability", "outage"),
         ("availability", None), ("availability", "outage")),
    ],
)  # fmt: skip
def test_what_a_name_was_sent_as_and_counts_as_in_each_canonical_vocabulary(
    cls: str,
    typ: str | None,
    sent: tuple[str, str, str | None],
    in_ecsirt: tuple[str, str | None],
    in_rsit: tuple[str, str | None],
) -> None:
    for taxonomy, target in ((TAXONOMY, in_ecsirt), (IN_RSIT, in_rsit)):
        match = taxonomy.lookup(cls, typ)
        assert match is not None
        assert match.sent == Classification(*sent)
        assert match.counts_as == Classification(taxonomy.canonical, *target)


def test_ecsirt_names_win_without_a_taxonomy_but_not_with_one() -> None:
    # "Information Security" is a class name in both vocabularies.
    found = TAXONOMY.lookup("Information Security", None)
    assert found is not None and found.sent == Classification(ECSIRT, "information-security")
    found = TAXONOMY.lookup("Information Security", None, RSIT)
    assert found is not None
    assert found.sent == Classification(RSIT, "information-content-security")
    assert found.counts_as == Classification(ECSIRT, "information-security")
    assert found.exact
    assert TAXONOMY.lookup("Malicious Code", "Virus", RSIT) is None
    assert TAXONOMY.lookup("vulnerable", None, ECSIRT) is None


@pytest.mark.parametrize(
    ("cls", "typ"),
    [("Malware", None), ("Fraud", "Virus"), ("", None), ("Other", "Spam"), ("Fraud", "")],
)
def test_unknown_names_resolve_to_none(cls: str, typ: str | None) -> None:
    assert TAXONOMY.resolve(cls, typ) is None


@pytest.mark.parametrize(
    ("written", "vocabulary"),
    [("ecsirt-v2", ECSIRT), ("eCSIRT.net v2", ECSIRT), ("RSIT-1.3", RSIT), ("rsit 1.3", RSIT),
     ("rsit-1003", RSIT), ("rsit", None), ("ecsirt", None), ("rsit-1.2", None)],
)  # fmt: skip
def test_taxonomy_lines_name_a_vocabulary_with_its_version(
    written: str, vocabulary: str | None
) -> None:
    found = TAXONOMY.named(written)
    assert (found and found.id) == vocabulary


def test_categories_and_labels_are_the_canonical_vocabularys() -> None:
    categories = list(TAXONOMY.categories())
    assert categories[:3] == [
        (("abusive-content", None), "Abusive Content"),
        (("abusive-content", "spam"), "Abusive Content / Spam"),
        (("abusive-content", "harassment"), "Abusive Content / Harassment"),
    ]
    assert categories[-1] == (("other", None), "Other")
    assert TAXONOMY.label(("malicious-code", "virus")) == "Malicious Code / Virus"
    assert TAXONOMY.label(("gone", "away")) == "gone / away"
    assert [c.slug for c in IN_RSIT.classes][-3:] == ["vulnerable", "other", "test"]
    assert IN_RSIT.label(("other", "other")) == "Other / Uncategorised"
    assert len(list(IN_RSIT.categories())) == 11 + 39


def test_counts_as_falls_back_to_what_was_stored_when_the_sent_name_is_gone() -> None:
    gone = Classification(ECSIRT, "malicious-code", "ransomware")  # a dropped extension
    stored = Classification(ECSIRT, "malicious-code", None)
    assert IN_RSIT.counts_as(gone, stored) == Match(
        gone, Classification(RSIT, "malicious-code", None), False
    )
    assert TAXONOMY.counts_as(gone, stored).counts_as == stored
    # neither known: kept by its slugs, never lost
    assert TAXONOMY.counts_as(gone).counts_as == gone
    assert TAXONOMY.counts_as(Classification("no-such", "x")).counts_as == Classification(
        ECSIRT, "x"
    )


def test_exact_equivalents_across_vocabularies() -> None:
    login = Classification(ECSIRT, "intrusion-attempts", "login-attempts")
    assert TAXONOMY.equivalents(login) == {
        login,
        Classification(RSIT, "intrusion-attempts", "brute-force"),
    }
    virus = Classification(ECSIRT, "malicious-code", "virus")
    assert TAXONOMY.equivalents(virus) == {virus}


def test_the_canonical_vocabulary_is_checked() -> None:
    assert TAXONOMY.with_canonical(RSIT).canonical == RSIT
    with pytest.raises(TaxonomyError, match="unknown taxonomy 'rsit-9'") as raised:
        load_taxonomy(canonical="rsit-9")
    assert isinstance(raised.value, ConfigError)


def _extra(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.toml"
    path.write_text(text, encoding="utf-8")
    return path


EXTRA = """
[[class]]
slug = "malicious-code"
name = "Malicious Code"
  [[class.type]]
  slug = "ransomware"
  name = "Ransomware"
  aliases = ["crypto locker"]

[[class]]
slug = "vulnerable"
name = "Vulnerable Systems"
maps_to = "vulnerable"
  [[class.type]]
  slug = "open-resolver"
  name = "Open resolver"
  maps_to = "vulnerable/ddos-amplifier"

[[rsit_class]]
slug = "other"
name = "Other"
  [[rsit_class.type]]
  slug = "dga-domain"
  name = "DGA domain"
"""


def test_extra_file_adds_types_and_classes(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(_extra(tmp_path, EXTRA))
    assert taxonomy.resolve("Malicious Code", "Crypto-Locker") == ("malicious-code", "ransomware")
    assert [t.slug for t in taxonomy.classes[1].types][-1] == "ransomware"
    assert taxonomy.classes[-1].slug == "vulnerable"
    # an eCSIRT name wins over the RSIT class of the same spelling
    assert taxonomy.resolve("vulnerable", None) == ("vulnerable", None)
    assert taxonomy.resolve("Vulnerable", "Weak crypto") == ("other", None)
    assert taxonomy.resolve("other", "dga-domain") == ("other", None)
    assert isinstance(TAXONOMY, Taxonomy)
    assert TAXONOMY.resolve("Vulnerable", None) == ("other", None)


def test_extensions_map_by_maps_to_or_onto_their_class(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(_extra(tmp_path, EXTRA), canonical=RSIT)
    ransomware = taxonomy.lookup("malicious-code", "ransomware")
    assert ransomware is not None and not ransomware.exact
    assert ransomware.target == ("malicious-code", None)
    resolver = taxonomy.lookup("vulnerable", "open-resolver", ECSIRT)
    assert resolver is not None and resolver.target == ("vulnerable", "ddos-amplifier")
    assert not resolver.exact  # RSIT's ddos-amplifier counts as eCSIRT Other, not back
    assert taxonomy.lookup("vulnerable", None, ECSIRT) == Match(
        Classification(ECSIRT, "vulnerable"), Classification(RSIT, "vulnerable"), False
    )
    assert taxonomy.lookup("Malicious Code", "Virus") == Match(
        Classification(ECSIRT, "malicious-code", "virus"),
        Classification(RSIT, "malicious-code"),
        False,
    )
    unmapped = load_taxonomy(_extra(tmp_path, '[[class]]\nslug = "x"\nname = "X"\n'), RSIT)
    assert unmapped.resolve("X", None, ECSIRT) == ("other", None)  # a new class: Other
    dga = taxonomy.lookup("other", "dga-domain")
    assert dga is not None and dga.sent == Classification(RSIT, "other", "dga-domain")


def test_a_declared_mapping_is_exact_only_where_both_sides_say_so(tmp_path: Path) -> None:
    both = """
[[class]]
slug = "malicious-code"
name = "Malicious Code"
  [[class.type]]
  slug = "ransomware"
  name = "Ransomware"
  maps_to = "malicious-code/ransomware"

[[rsit_class]]
slug = "malicious-code"
name = "Malicious Code"
  [[rsit_class.type]]
  slug = "ransomware"
  name = "Ransomware"
  maps_to = "malicious-code/ransomware"
"""
    taxonomy = load_taxonomy(_extra(tmp_path, both), canonical=RSIT)
    found = taxonomy.lookup("Malicious Code", "Ransomware", ECSIRT)
    assert found is not None and found.exact and found.target == ("malicious-code", "ransomware")
    one_side = both.split("[[rsit_class]]")[0].replace("/ransomware", "/infected-system")
    taxonomy = load_taxonomy(_extra(tmp_path, one_side), canonical=RSIT)
    found = taxonomy.lookup("Malicious Code", "Ransomware", ECSIRT)
    assert found is not None and not found.exact


@pytest.mark.parametrize(
    "text",
    [
        '[[class]]\nslug = "x"\nname = "X"\ncolour = "red"\n',
        '[[klass]]\nslug = "x"\nname = "X"\n',
        '[[class]]\nslug = "Bad Slug"\nname = "X"\n',
        '[[class]]\nslug = "x"\nname = ""\n',
        '[[class]]\nslug = "fraud"\nname = "F"\n[[class.type]]\nslug = "copyright"\nname = "C"\n',
        '[[class]]\nslug = "x"\nname = "Fraud"\n',
        '[[rsit_class]]\nslug = "x"\nname = "X"\nmaps_to = "nowhere"\n',
        '[[class]]\nslug = "x"\nname = "X"\nmaps_to = "nowhere"\n',
        '[[class]]\nslug = "x"\nname = "X"\nmaps_to = "fraud/phishing"\n',
        '[[class]]\nslug = "fraud"\nname = "Fraud"\nmaps_to = "other"\n',
        '[[class]]\nslug = "x"\nname = "X"\n[[class.type]]\nslug = "y"\nname = "Y"\n'
        'maps_to = "fraud/phishing"\n',
        "class = 3\n",
        "this is not toml",
    ],
)
def test_broken_extra_files_are_refused_as_configuration_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(TaxonomyError) as raised:
        load_taxonomy(_extra(tmp_path, text))
    assert isinstance(raised.value, ConfigError)
    assert raised.value.exit_code == 2


def test_missing_extra_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="absent.toml"):
        load_taxonomy(tmp_path / "absent.toml")
