"""The shipped taxonomy, RSIT mapping, name matching and extension by an extra file."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from parsers.taxonomy import Match, Taxonomy, TaxonomyError, load_taxonomy

TAXONOMY = load_taxonomy()

CLASSES = [
    ("abusive-content", "Abusive Content", ["spam", "harassment", "child-sexual-violence"]),
    ("malicious-code", "Malicious Code", ["virus", "worm", "trojan", "spyware", "dialler"]),
    ("information-gathering", "Information Gathering",
     ["scanning", "sniffing", "social-engineering"]),
    ("intrusion-attempts", "Intrusion Attempts",
     ["exploiting-known-vulnerabilities", "login-attempts", "new-attack-signature"]),
    ("intrusions", "Intrusions", ["privileged-account-compromise",
                                  "unprivileged-account-compromise", "application-compromise"]),
    ("availability", "Availability", ["dos", "ddos", "sabotage"]),
    ("information-security", "Information Security",
     ["unauthorised-access", "unauthorised-modification"]),
    ("fraud", "Fraud", ["unauthorised-use", "copyright", "masquerade"]),
    ("other", "Other", []),
]  # fmt: skip


def test_classes_and_types_in_report_order() -> None:
    shipped = [(c.slug, c.name, [t.slug for t in c.types]) for c in TAXONOMY]
    assert shipped == CLASSES


def test_every_class_and_type_resolves_by_name_and_by_slug() -> None:
    for cls in TAXONOMY:
        assert TAXONOMY.resolve(cls.name, None) == (cls.slug, None)
        assert TAXONOMY.resolve(cls.slug, None) == (cls.slug, None)
        for typ in cls.types:
            assert TAXONOMY.resolve(cls.name, typ.name) == (cls.slug, typ.slug)
            assert TAXONOMY.resolve(cls.slug, typ.slug) == (cls.slug, typ.slug)
            assert TAXONOMY.lookup(cls.name, typ.name) == Match((cls.slug, typ.slug))


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
    assert TAXONOMY.resolve("Intrusion Attempts", "Exploiting of known Vulnerabilities") == (
        "intrusion-attempts",
        "exploiting-known-vulnerabilities",
    )


@pytest.mark.parametrize(
    ("cls", "typ", "target"),
    [
        ("Malicious Code", "Infected System", ("malicious-code", None)),
        ("Malicious Code", "C2 Server", ("malicious-code", None)),
        ("Information Gathering", "Scanning", ("information-gathering", "scanning")),
        ("information-gathering", "scanner", ("information-gathering", "scanning")),
        ("Intrusion Attempts", "Exploitation of known Vulnerabilities",
         ("intrusion-attempts", "exploiting-known-vulnerabilities")),
        ("intrusion-attempts", "brute-force", ("intrusion-attempts", "login-attempts")),
        ("Intrusions", "Privileged Account Compromise",
         ("intrusions", "privileged-account-compromise")),
        ("Intrusions", "System Compromise", ("intrusions", None)),
        ("Availability", "DDoS", ("availability", "ddos")),
        ("Availability", "Distributed Denial of Service", ("availability", "ddos")),
        ("Availability", "Outage", ("availability", None)),
        ("Information Content Security", None, ("information-security", None)),
        ("Information Content Security", "Unauthorised access to information",
         ("information-security", "unauthorised-access")),
        ("Information Content Security", "Leak of confidential information",
         ("information-security", "unauthorised-access")),
        ("Information Content Security", "Data Loss", ("information-security", None)),
        ("Fraud", "Phishing", ("fraud", "masquerade")),
        ("Abusive Content", "Harmful Speech", ("abusive-content", "harassment")),
        ("Vulnerable", None, ("other", None)),
        ("Vulnerable", "Weak crypto", ("other", None)),
        ("Other", "Undetermined", ("other", None)),
        ("Other", "Uncategorised", ("other", None)),
        ("Test", "Test", ("other", None)),
    ],
)  # fmt: skip
def test_rsit_names_map_onto_ecsirt(cls: str, typ: str | None, target: tuple[str, str]) -> None:
    assert TAXONOMY.resolve(cls, typ) == target


def test_rsit_matches_say_so() -> None:
    match = TAXONOMY.lookup("fraud", "phishing")
    assert match == Match(("fraud", "masquerade"), "Fraud / Phishing")


def test_every_rsit_class_and_type_is_mapped() -> None:
    shipped = resources.files("parsers").joinpath("taxonomy.toml").read_text("utf-8")
    rsit = tomllib.loads(shipped)["rsit_class"]
    assert len(rsit) == 11
    for cls in rsit:
        assert TAXONOMY.resolve(cls["name"], None) is not None
        assert cls["type"], cls["name"]
        for typ in cls["type"]:
            target = TAXONOMY.resolve(cls["name"], typ["name"])
            assert target is not None, (cls["name"], typ["name"])
            assert TAXONOMY.resolve(cls["slug"], typ["slug"]) == target


@pytest.mark.parametrize(
    ("cls", "typ"),
    [("Malware", None), ("Fraud", "Virus"), ("", None), ("Other", "Spam"), ("Fraud", "")],
)
def test_unknown_names_resolve_to_none(cls: str, typ: str | None) -> None:
    assert TAXONOMY.resolve(cls, typ) is None


def test_categories_list_each_class_then_its_types() -> None:
    categories = list(TAXONOMY.categories())
    assert categories[:3] == [
        (("abusive-content", None), "Abusive Content"),
        (("abusive-content", "spam"), "Abusive Content / Spam"),
        (("abusive-content", "harassment"), "Abusive Content / Harassment"),
    ]
    assert categories[-1] == (("other", None), "Other")
    assert len(categories) == len(CLASSES) + sum(len(types) for _, _, types in CLASSES)
    assert TAXONOMY.label(("malicious-code", "virus")) == "Malicious Code / Virus"
    assert TAXONOMY.label(("gone", "away")) == "gone / away"


def _extra(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_extra_file_adds_types_and_classes(tmp_path: Path) -> None:
    extra = _extra(
        tmp_path,
        """
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
  [[class.type]]
  slug = "open-resolver"
  name = "Open resolver"
""",
    )
    taxonomy = load_taxonomy(extra)
    assert taxonomy.resolve("Malicious Code", "Crypto-Locker") == ("malicious-code", "ransomware")
    assert [t.slug for t in taxonomy.classes[1].types][-1] == "ransomware"
    assert taxonomy.classes[-1].slug == "vulnerable"
    # an eCSIRT name wins over the RSIT class of the same spelling
    assert taxonomy.resolve("vulnerable", None) == ("vulnerable", None)
    assert taxonomy.resolve("Vulnerable", "Weak crypto") == ("other", None)
    assert isinstance(TAXONOMY, Taxonomy)
    assert TAXONOMY.resolve("Vulnerable", None) == ("other", None)


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
        '[[rsit_class]]\nslug = "x"\nname = "X"\n',
        '[[class]]\nslug = "x"\nname = "X"\nmaps_to = "other"\n',
        "this is not toml",
    ],
)
def test_broken_extra_files_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(TaxonomyError):
        load_taxonomy(_extra(tmp_path, text))


def test_missing_extra_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError):
        load_taxonomy(tmp_path / "absent.toml")
