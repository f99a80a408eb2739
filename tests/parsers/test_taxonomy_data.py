"""The shipped vocabularies and their mapping: RSIT 1.3 as published, eCSIRT.net v2 as
before, and the mapping's rules in both directions.

RSIT_1003 is written here from the source, independently of the shipped file:
working_copy/machinev1 of enisaeu/Reference-Security-Incident-Taxonomy-Task-Force at
commit 62525e8f3ca9aefa11bb410b59fa92ce0d1fc49c, whose "version" field is 1003
(predicate, its "expanded" name, then each value with its "expanded" name).
"""

from __future__ import annotations

import pytest

from contract.errors import ConfigError
from parsers.crosswalk import Mapped, build_crosswalk
from parsers.taxonomy import ECSIRT, RSIT, TaxonomyError, load_taxonomy
from parsers.vocabulary import Target

TAXONOMY = load_taxonomy()

RSIT_1003 = [
    ("abusive-content", "Abusive Content", [
        ("spam", "Spam"),
        ("harmful-speech", "Harmful Speech"),
        ("violence", "(Child) Sexual Exploitation/Sexual/Violent Content"),
    ]),
    ("malicious-code", "Malicious Code", [
        ("infected-system", "Infected System"),
        ("c2-server", "C2 Server"),
        ("malware-distribution", "Malware Distribution"),
        ("malware-configuration", "Malware Configuration"),
    ]),
    ("information-gathering", "Information Gathering", [
        ("scanner", "Scanning"),
        ("sniffing", "Sniffing"),
        ("social-engineering", "Social Engineering"),
    ]),
    ("intrusion-attempts", "Intrusion Attempts", [
        ("ids-alert", "Exploitation of Known Vulnerabilities"),
        ("brute-force", "Login Attempts"),
        ("exploit", "New Attack Signature"),
    ]),
    ("intrusions", "Intrusions", [
        ("privileged-account-compromise", "Privileged Account Compromise"),
        ("unprivileged-account-compromise", "Unprivileged Account Compromise"),
        ("application-compromise", "Application Compromise"),
        ("system-compromise", "System Compromise"),
        ("burglary", "Burglary"),
    ]),
    ("availability", "Availability", [
        ("dos", "Denial of Service"),
        ("ddos", "Distributed Denial of Service"),
        ("misconfiguration", "Misconfiguration"),
        ("sabotage", "Sabotage"),
        ("outage", "Outage"),
    ]),
    ("information-content-security", "Information Security", [
        ("unauthorised-information-access", "Unauthorised Access to Information"),
        ("unauthorised-information-modification", "Unauthorised Modification of Information"),
        ("data-loss", "Data Loss"),
        ("data-leak", "Leak of Confidential Information"),
    ]),
    ("fraud", "Fraud", [
        ("unauthorised-use-of-resources", "Unauthorised Use of Resources"),
        ("copyright", "Copyright"),
        ("masquerade", "Masquerade"),
        ("phishing", "Phishing"),
    ]),
    ("vulnerable", "Vulnerable", [
        ("weak-crypto", "Weak Cryptography"),
        ("ddos-amplifier", "DDoS Amplifier"),
        ("potentially-unwanted-accessible", "Potentially Unwanted Accessible Services"),
        ("information-disclosure", "Information disclosure"),
        ("vulnerable-system", "Vulnerable System"),
    ]),
    ("other", "Other", [
        ("other", "Uncategorised"),
        ("undetermined", "Undetermined"),
    ]),
    ("test", "Test", [
        ("test", "Test"),
    ]),
]  # fmt: skip

ECSIRT_V2 = [
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

# Every entry of the mapping that says less than its source; all others are exact.
ECSIRT_TO_RSIT_COARSER = {
    ("malicious-code", typ): ("malicious-code", None)
    for typ in ("virus", "worm", "trojan", "spyware", "dialler")
}
RSIT_TO_ECSIRT_COARSER: dict[Target, Target] = {
    **{("malicious-code", t): ("malicious-code", None)
       for t in ("infected-system", "c2-server", "malware-distribution", "malware-configuration")},
    ("intrusions", "system-compromise"): ("intrusions", None),
    ("intrusions", "burglary"): ("intrusions", None),
    ("availability", "misconfiguration"): ("availability", None),
    ("availability", "outage"): ("availability", None),
    ("information-content-security", "data-loss"): ("information-security", None),
    ("information-content-security", "data-leak"): ("information-security", None),
    ("fraud", "phishing"): ("fraud", "masquerade"),
    **{("vulnerable", t): ("other", None) for t in (None, "weak-crypto", "ddos-amplifier",
       "potentially-unwanted-accessible", "information-disclosure", "vulnerable-system")},
    ("other", "other"): ("other", None),
    ("other", "undetermined"): ("other", None),
    ("test", None): ("other", None),
    ("test", "test"): ("other", None),
}  # fmt: skip


def test_rsit_is_version_1003_with_its_11_classes_and_39_types() -> None:
    rsit = TAXONOMY.vocabulary(RSIT)
    shipped = [(c.slug, c.name, [(t.slug, t.name) for t in c.types]) for c in rsit.classes]
    assert shipped == RSIT_1003
    assert (rsit.version, rsit.machine_version) == ("1.3", 1003)
    assert len(rsit.classes) == 11
    assert sum(len(c.types) for c in rsit.classes) == 39
    assert "machine-readable version 1003" in rsit.full_name


def test_ecsirt_is_as_before() -> None:
    ecsirt = TAXONOMY.vocabulary(ECSIRT)
    assert [(c.slug, c.name, [t.slug for t in c.types]) for c in ecsirt.classes] == ECSIRT_V2
    assert (ecsirt.name, ecsirt.version, ecsirt.machine_version) == ("eCSIRT.net v2", "2", None)


@pytest.mark.parametrize(
    ("source", "to", "coarser"),
    [(ECSIRT, RSIT, ECSIRT_TO_RSIT_COARSER), (RSIT, ECSIRT, RSIT_TO_ECSIRT_COARSER)],
)
def test_every_class_and_type_maps_exactly_or_coarser_as_listed(
    source: str, to: str, coarser: dict[Target, Target]
) -> None:
    target_vocabulary = TAXONOMY.vocabulary(to)
    for key, _ in TAXONOMY.vocabulary(source).categories():
        mapped = TAXONOMY.crosswalk.map(source, to, key)
        assert mapped is not None, key
        assert target_vocabulary.has(mapped.target)
        if key in coarser:
            assert mapped == Mapped(coarser[key], exact=False), key
        else:
            assert mapped.exact, key
            back = TAXONOMY.crosswalk.map(to, source, mapped.target)
            assert back == Mapped(key, exact=True), key


@pytest.mark.parametrize(
    ("source", "key", "to", "target"),
    [
        (ECSIRT, ("abusive-content", "harassment"), RSIT, ("abusive-content", "harmful-speech")),
        (ECSIRT, ("information-gathering", "scanning"), RSIT,
         ("information-gathering", "scanner")),
        (ECSIRT, ("intrusion-attempts", "exploiting-known-vulnerabilities"), RSIT,
         ("intrusion-attempts", "ids-alert")),
        (ECSIRT, ("intrusion-attempts", "login-attempts"), RSIT,
         ("intrusion-attempts", "brute-force")),
        (ECSIRT, ("intrusion-attempts", "new-attack-signature"), RSIT,
         ("intrusion-attempts", "exploit")),
        (ECSIRT, ("information-security", None), RSIT, ("information-content-security", None)),
        (ECSIRT, ("fraud", "unauthorised-use"), RSIT, ("fraud", "unauthorised-use-of-resources")),
        (ECSIRT, ("other", None), RSIT, ("other", None)),
        (RSIT, ("abusive-content", "violence"), ECSIRT,
         ("abusive-content", "child-sexual-violence")),
        (RSIT, ("information-content-security", "unauthorised-information-modification"),
         ECSIRT, ("information-security", "unauthorised-modification")),
    ],
)  # fmt: skip
def test_renamed_classes_and_types_map_exactly(
    source: str, key: Target, to: str, target: Target
) -> None:
    assert TAXONOMY.crosswalk.map(source, to, key) == Mapped(target, exact=True)


def test_a_class_only_line_never_maps_onto_a_type() -> None:
    for source, to in ((ECSIRT, RSIT), (RSIT, ECSIRT)):
        for key, _ in TAXONOMY.vocabulary(source).categories():
            mapped = TAXONOMY.crosswalk.map(source, to, key)
            assert mapped is not None
            if key[1] is None:
                assert mapped.target[1] is None, key
            else:
                class_target = TAXONOMY.crosswalk.map(source, to, (key[0], None))
                assert class_target is not None and mapped.target[0] == class_target.target[0]


def _broken(direction: tuple[str, str], key: Target, mapped: Mapped | None) -> None:
    """Build the crosswalk with one shipped entry changed (None: removed)."""
    entries = {d: dict(found) for d, found in TAXONOMY.crosswalk.entries.items()}
    if mapped is None:
        del entries[direction][key]
    else:
        entries[direction][key] = mapped
    vocabularies = {v.id: v for v in TAXONOMY.vocabularies}
    build_crosswalk(entries, vocabularies, {})


@pytest.mark.parametrize(
    ("direction", "key", "mapped", "says"),
    [
        ((RSIT, ECSIRT), ("test", "test"), None, "missing"),
        ((RSIT, ECSIRT), ("test", "test"), Mapped(("test", None), False), "is not in"),
        ((ECSIRT, RSIT), ("fraud", None), Mapped(("fraud", "masquerade"), False), "class-only"),
        ((RSIT, ECSIRT), ("fraud", "phishing"), Mapped(("other", None), False), "its class"),
        ((RSIT, ECSIRT), ("fraud", "phishing"), Mapped(("fraud", None), True), "coarser"),
        ((RSIT, ECSIRT), ("fraud", "phishing"), Mapped(("fraud", "masquerade"), True),
         "map back"),
        ((ECSIRT, RSIT), (("no-such"), None), Mapped(("other", None), False), "not in"),
    ],
)  # fmt: skip
def test_a_broken_mapping_is_refused(
    direction: tuple[str, str], key: Target, mapped: Mapped | None, says: str
) -> None:
    with pytest.raises(TaxonomyError, match=says) as raised:
        _broken(direction, key, mapped)
    assert isinstance(raised.value, ConfigError)  # exit status 2 at the CLI
