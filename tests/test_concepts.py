"""Concept matching: parts in any order and inflection, near each other in one clause; look-alikes kept apart;
excluded terms that narrow rather than veto; and the status each kind of sentence gives."""

from __future__ import annotations

import functools
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.concepts import ConceptIndex, compile_concept
from monitor.config import DEFAULT_CONFIG_PATH, ProposalConfig, load_config
from monitor.cues import read_cue
from monitor.errors import ConfigError
from monitor.match import CONCEPT_SCORE, Matcher, fold_text, normalize_text
from monitor.text import clauses


@functools.cache
def default_matcher() -> Matcher:
    return Matcher(load_config(DEFAULT_CONFIG_PATH, env={}).proposals)


def found(title: str, summary: str = "") -> dict[str, str]:
    return {m.proposal: m.status for m in default_matcher().match(title, summary)}


def folded(text: str) -> str:
    return fold_text(normalize_text(text))


# ---------------------------------------------------------------- the concept itself
@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("British troops could deploy next year", "british troops"),
        ("troops British", None),  # ordered: who before what
        ("Britain's peacekeepers", "britain's peacekeepers"),  # inflection and possessive
        ("British army and air force troops", None),  # too far apart
        ("British officials, troops and tanks", None),  # a comma separates two statements
        ("British peacekeeeepers", "british peacekeeeepers"),  # a misspelt long word, found with rapidfuzz
        ("British peacemakers", None),  # a different word is not a misspelling
    ],
)
def test_concept_parts_in_order_near_and_in_one_clause(text: str, hit: str | None) -> None:
    concept = compile_concept(["British|Britain", "troop*|peacekeepers"], near=2, actors=[], ordered=True)
    result = concept.find(folded(text))
    assert (result.words if result else None) == hit


_PART_WORDS = ["troop", "troops", "peacekeepers", "british", "britain's", "u.s.", "forces", "for", "ukraine", "x"]


@given(st.lists(st.sampled_from([*_PART_WORDS, " ", ", ", "-", "'", "...", "\n"]), max_size=14))
def test_concept_part_search_finds_what_its_pattern_finds(pieces: list[str]) -> None:
    """The test for a part's words before its pattern's search never hides a hit."""
    concept = compile_concept(
        ["British|Britain's|US", "troop*|peacekeep* ... Ukraine|forces for", "for"], near=3, actors=[]
    )
    text = folded("".join(pieces))
    for part in concept.parts:
        quick, full = part.search(text), part.pattern.search(text)
        assert (quick and quick.span()) == (full and full.span())


@given(
    st.lists(
        st.sampled_from(["peacekeeepers", "peace", "reassurancee", "reas", "l'assurance", "_", "é", " "]), max_size=9
    )
)
def test_concept_misspellings_are_the_long_words_with_a_fuzzy_words_start(pieces: list[str]) -> None:
    part = compile_concept(["British", "peacekeepers|reassurance|l'assurance"], near=3, actors=[]).parts[1]
    text = "".join(pieces)
    words = [w.span() for w in re.finditer(r"\w+", text) if len(w.group()) >= 7 and w.group()[:4] in ("peac", "reas")]
    assert part.misspelt is not None
    assert [w.span() for w in part.misspelt.finditer(text)] == words


def test_concept_any_order_and_actor_group() -> None:
    concept = compile_concept(["@actor", "guarante*"], near=3, actors=["United States", "Trump"])
    assert concept.find(folded("guarantees from Trump")) is not None
    assert concept.find(folded("U.S. guarantees")) is not None  # "U.S." folds to "united states"
    assert concept.find(folded("guarantees from Italy")) is None


def test_concept_keys_let_the_matcher_skip_items_without_them() -> None:
    concept = compile_concept(["NATO|alliance", "membership|accession"], near=3, actors=[])
    assert concept.keys == (frozenset({"nato", "alli"}), frozenset({"memb", "acce"}))
    index = ConceptIndex([concept])
    assert index.possible({"nato", "memb"}) == [0]
    assert index.possible({"nato", "trad"}) == []  # one part's words are missing
    assert concept.may_hold("nato membership") and not concept.may_hold("nato trade")


# ---------------------------------------------------------------- the default proposals, by concept
@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # membership, in words no alias uses
        ("NATO shows no sign of letting Ukraine join soon", "", {"ukraine-nato-membership": "discussion"}),
        ("Zelensky confident Ukraine will one day enter NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("NATO allies split over Ukraine's accession", "", {"ukraine-nato-membership": "discussion"}),
        ("Kremlin insists on a neutral Ukraine", "", {"ukraine-nato-membership": "discussion"}),
        # ... by what is hoped for, in whose name ("Ukraine's NATO hopes"), and by letting in or keeping out
        ("Allies split over Kyiv's NATO prospects", "", {"ukraine-nato-membership": "discussion"}),
        ("Peace plan would bar Ukraine from NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Trump says Ukraine will never be allowed in NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Stoltenberg: Ukraine will become a NATO member", "", {"ukraine-nato-membership": "discussion"}),
        ("Hungary blocks Ukraine's path into NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Putin demands halt to NATO expansion into Ukraine", "", {"ukraine-nato-membership": "discussion"}),
        ("Germany opposes inviting Ukraine into NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Poutine exige que l'Ukraine renonce a l'OTAN", "", {"ukraine-nato-membership": "discussion"}),
        ("Зеленський: Україна має бути в НАТО", "", {"ukraine-nato-membership": "discussion"}),
        ("Ukraine must never be part of NATO, Medvedev says", "", {"ukraine-nato-membership": "discussion"}),
        ("Russia demands a pledge that NATO will not expand to Ukraine", "", {"ukraine-nato-membership": "discussion"}),
        ("Zelensky offers to drop NATO ambitions for guarantees", "", {"ukraine-nato-membership": "discussion"}),
        ("Ukraine would accept NATO umbrella for territory it controls", "", {"ukraine-nato-membership": "discussion"}),
        ("Trump says Ukraine can 'forget about' NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Russia wants a guarantee that Ukraine stays out of NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("NATO vows support for Ukraine, but won't promise membership", "", {"ukraine-nato-membership": "discussion"}),
        # a reassurance force described, not named
        ("Twenty countries pledged troops to guarantee a Ukraine ceasefire", "", {"reassurance-force": "proposal"}),
        ("Canadian soldiers could deploy to Ukraine after a truce", "", {"reassurance-force": "discussion"}),
        ("Paris readies plans for possible Ukraine deployment", "", {"reassurance-force": "discussion"}),
        ("Lithuania joins the coalition of the willing", "", {"reassurance-force": "proposal"}),
        ("Kremlin rejects any European military presence in Ukraine", "", {"reassurance-force": "discussion"}),
        ("Turkey edges closer to leading Black Sea mission for Ukraine", "", {"reassurance-force": "discussion"}),
        ("Meloni: nessun soldato italiano in Ucraina", "", {"reassurance-force": "discussion"}),  # noun first
        ("Merz schliesst Bundeswehr-Einsatz in der Ukraine nicht aus", "", {"reassurance-force": "discussion"}),
        ("Sweden open to contributing troops to Ukraine mission", "", {"reassurance-force": "proposal"}),
        ("Starmer and Macron discuss a Ukraine peacekeeping contingent", "", {"reassurance-force": "discussion"}),
        ("Britain and France to set up military hubs in Ukraine", "", {"reassurance-force": "proposal"}),
        ("Sweden says it is ready to contribute to Ukraine force", "", {"reassurance-force": "proposal"}),
        ("Estonia ready to send a company to Ukraine", "", {"reassurance-force": "proposal"}),
        ("UK to lead European force to secure Ukraine peace deal", "", {"reassurance-force": "proposal"}),
        (
            "Army chiefs meet in Paris",
            "They discussed how a force to reassure Ukraine after a ceasefire would be made up.",
            {"reassurance-force": "discussion"},
        ),
        # the US backstop described
        (
            "Ukraine ceasefire plan: American guarantees would cover air defence",
            "",
            {"us-security-backstop": "discussion"},
        ),
        ("Trump rules out US ground troops in Ukraine", "", {"us-security-backstop": "discussion"}),
        ("American forces could help police a Ukraine ceasefire", "", {"us-security-backstop": "discussion"}),
        (
            "Kyiv's allies draft a truce plan",
            "Paris says the plan for Ukraine still needs US support for any peace settlement.",
            {"us-security-backstop": "discussion"},
        ),
        # a named US guarantee needs no mention of Ukraine in its sentence
        ("Kremlin strike talk clouds US security guarantees", "", {"us-security-backstop": "discussion"}),
        ("Zelensky wants a firm US commitment to Ukraine's security", "", {"us-security-backstop": "discussion"}),
        (
            "US ready to give Ukraine 'Article 5-like' guarantees, Rubio says",
            "",
            {"us-security-backstop": "proposal", "it-article5-guarantee": "proposal"},
        ),
        ("Ukraine wants guarantees with American backstop, Zelensky says", "", {"us-security-backstop": "discussion"}),
        # membership as where an arrangement leads
        ("Kyiv sees the pact as a stepping stone to NATO", "", {"ukraine-nato-membership": "discussion"}),
        # agreements with a qualifier other than "security"
        ("Ukraine, Japan agree 10-year defence pact", "", {"jp-ua-2024": "signed"}),
        ("Norway and Ukraine conclude bilateral treaty", "", {"other-eu-ua-bilateral-2024": "signed"}),
        ("Zelenskyy and De Croo sign new security pact", "", {"other-eu-ua-bilateral-2024": "signed"}),  # a leader
        (  # another party's troops explain away only their own clause
            "Britain pledges troops for Ukraine after Trump rules out US troops",
            "",
            {"reassurance-force": "proposal", "us-security-backstop": "discussion"},
        ),
        (  # two events in one headline keep their own parties and statuses
            "Ukraine and Germany sign security pact as France weighs sending troops to Ukraine",
            "",
            {"de-ua-2024": "signed", "reassurance-force": "discussion"},
        ),
        # an Article 5-like guarantee described
        ("Envoy says Ukraine may get guarantees akin to Article 5", "", {"it-article5-guarantee": "discussion"}),
        ("Meloni proposes extending Article 5 protection to Ukraine", "", {"it-article5-guarantee": "proposal"}),
        ("What an 'Article 5-plus' guarantee for Ukraine would mean", "", {"it-article5-guarantee": "discussion"}),
        (  # the alternative to membership, not membership
            "Meloni argues for a defence pact modelled on NATO's, without Ukraine joining the alliance",
            "",
            {"it-article5-guarantee": "discussion"},
        ),
        ("Garanzie di sicurezza per Kiev, Meloni rilancia l'articolo 5", "", {"it-article5-guarantee": "proposal"}),
        (  # ... in any of the languages, and by other words for joining
            "Meloni propone di estendere la protezione dell'articolo 5 all'Ucraina, senza l'ingresso nella Nato",
            "",
            {"it-article5-guarantee": "proposal"},
        ),
        (
            "At Munich, Meloni revives idea of Article 5-style shield for Kyiv",
            "She said a collective defence clause could work without Ukraine entering the alliance.",
            {"it-article5-guarantee": "discussion"},
        ),
        # the EU's door opened and NATO's closed in one sentence: the EU clause does not explain NATO away
        ("Moscow would accept Ukraine in the EU, but not NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Kyiv will not give up on NATO, Zelensky tells parliament", "", {"ukraine-nato-membership": "discussion"}),
        ("NATO backs Ukraine, but stops short of membership", "", {"ukraine-nato-membership": "discussion"}),
        # giving membership up for guarantees speaks of membership; a NATO-like guarantee in another clause does
        # not explain it away
        (
            "Zelensky could accept security guarantees instead of NATO membership",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        (
            "Zelensky: if NATO membership is not possible, Kyiv needs Article 5-like guarantees",
            "",
            {"ukraine-nato-membership": "discussion", "it-article5-guarantee": "discussion"},
        ),
        (
            "Allies offer NATO-like guarantees that stop short of membership for Ukraine",
            "",
            {"it-article5-guarantee": "proposal"},
        ),
        ("Ukraine cannot hope to become a NATO member this decade", "", {"ukraine-nato-membership": "discussion"}),
        ("We want NATO, not promises, Ukraine's leader says", "", {"ukraine-nato-membership": "discussion"}),
        ("NATO shows little appetite for Ukraine, envoys say", "", {"ukraine-nato-membership": "discussion"}),
        ("NATO has no room for Kyiv yet, diplomats say", "", {"ukraine-nato-membership": "discussion"}),
        (
            "Kremlin wants written guarantees of NATO non-expansion, citing Ukraine",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        (
            "Ukraine will never become part of the North Atlantic alliance, Lavrov says",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        ("Trump declines to commit to protecting Ukraine", "", {"us-security-backstop": "discussion"}),
        ("Twelve nations pledge to join a Ukraine force", "", {"reassurance-force": "proposal"}),
        ("Ministers of 30 countries discuss Ukraine mission", "", {"reassurance-force": "discussion"}),
        ("Leaders gather for Ukraine coalition meeting in Rome", "", {"reassurance-force": "discussion"}),
        ("Defence chiefs meet in Paris on Ukraine security force", "", {"reassurance-force": "discussion"}),
        ("French general to command Ukraine reassurance force", "", {"reassurance-force": "proposal"}),
        # a border named for NATO's reach, not where troops stand
        (
            "Kremlin: European peacekeepers in Ukraine would mean NATO on Russia's border",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("Ukraine drops NATO demand in revised plan", "", {"ukraine-nato-membership": "discussion"}),
        ("US envoy: NATO seat for Ukraine not on the agenda", "", {"ukraine-nato-membership": "discussion"}),
        (
            "Kremlin warns against any move to fast-track Ukraine into NATO",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        ("NATO's Rutte says Kyiv's path to membership is irreversible", "", {"ukraine-nato-membership": "proposal"}),
        ("Kremlin: Kyiv must legally renounce joining blocs", "", {"ukraine-nato-membership": "discussion"}),
        ("Nine nations vow to join postwar Ukraine force", "", {"reassurance-force": "proposal"}),
        ("Netherlands is open to joining Ukraine force", "", {"reassurance-force": "proposal"}),
        ("US declines to spell out its role in Ukraine guarantees", "", {"us-security-backstop": "discussion"}),
        ("Congress delays vote on Ukraine security guarantees", "", {"us-security-backstop": "discussion"}),
        ("Canada, Ukraine sign strategic security partnership", "", {"ca-ua-2024": "signed"}),
        ("Drone strike jeopardizes US security assurances", "", {"us-security-backstop": "discussion"}),
        ("US proposes strong security to Ukraine", "", {"us-security-backstop": "proposal"}),
        ("UK sets aside funds for a possible Kyiv deployment", "", {"reassurance-force": "discussion"}),
        # where a pact is signed is no party to it
        ("Biden, Zelenskiy sign security pact in Italy", "", {"us-ua-2024": "signed"}),
        # planning the force; sending a unit; a force described by when it deploys
        (
            "Leaders plan for postwar Ukraine",
            "Paris leads talks on troops to be deployed after a ceasefire.",
            {"reassurance-force": "discussion"},
        ),
        ("Данія готова розмістити війська в Україні", "", {"reassurance-force": "proposal"}),
        ("Army chiefs meet to plan the Ukraine force", "", {"reassurance-force": "discussion"}),
        ("Latvia is ready to send a unit to Ukraine", "", {"reassurance-force": "proposal"}),
        # the US meeting on, agreeing to, taking part in or backing the guarantees
        ("US officials and European allies meet on guarantees for Kyiv", "", {"us-security-backstop": "discussion"}),
        ("Rubio says the US agreed to strong protection for Ukraine", "", {"us-security-backstop": "proposal"}),
        ("Washington will take part in guarantees for Ukraine", "", {"us-security-backstop": "proposal"}),
        (
            "US backing for a European-led force in Ukraine remains unclear",
            "",
            {"us-security-backstop": "discussion", "reassurance-force": "discussion"},
        ),
        # in the other languages, and under a topic that heads the headline
        ("Zelensky pret a renoncer a l'OTAN en echange de garanties", "", {"ukraine-nato-membership": "discussion"}),
        ("L'OTAN ferme la porte a l'Ukraine", "", {"ukraine-nato-membership": "discussion"}),
        ("Україна не відмовиться від курсу на НАТО", "", {"ukraine-nato-membership": "discussion"}),
        ("Une garantie inspiree de l'article 5 pour l'Ukraine", "", {"it-article5-guarantee": "discussion"}),
        ("Trump: gli Usa pronti a dare garanzie di sicurezza a Kiev", "", {"us-security-backstop": "proposal"}),
        (
            "Washington refuse de s'engager sur des garanties de securite pour Kiev",
            "",
            {"us-security-backstop": "discussion"},
        ),
        ("Merz: Keine deutschen Soldaten in die Ukraine", "", {"reassurance-force": "discussion"}),
        ("Trump: 'Gli Usa daranno garanzie di sicurezza all'Ucraina'", "", {"us-security-backstop": "proposal"}),
        ("USA sagen Ukraine Sicherheitsgarantien zu", "", {"us-security-backstop": "proposal"}),
        ("Зеленський: США готові надати гарантії безпеки Україні", "", {"us-security-backstop": "proposal"}),
        (
            "Garanties de securite : les Etats-Unis prets a s'engager, selon Zelensky",
            "",
            {"us-security-backstop": "proposal"},
        ),
        (
            "Коаліція охочих: Британія і Франція відправлять війська в Україну",
            "",
            {"reassurance-force": "proposal"},
        ),
        # offering troops as sending them is; refusing to commit the US to defend Ukraine; NATO not given up;
        # a mutual defence clause that covers Ukraine
        (
            "Lithuania offers a company of troops for coalition mission in Ukraine",
            "",
            {"reassurance-force": "proposal"},
        ),
        ("Trump declines to commit US to defend Ukraine after ceasefire", "", {"us-security-backstop": "discussion"}),
        ("Zelensky says Ukraine has not given up on NATO", "", {"ukraine-nato-membership": "discussion"}),
        (
            "Allies study Italian proposal for mutual defence clause covering Kyiv",
            "",
            {"it-article5-guarantee": "discussion"},
        ),
        # troops for the Ukraine force; an accord on security support (Japan's "Accord on Support for Ukraine")
        ("Netherlands earmarks troops for post-ceasefire Ukraine force", "", {"reassurance-force": "proposal"}),
        ("Kishida and Zelensky sign accord on security support", "", {"jp-ua-2024": "signed"}),
        # leading the force with words between; the century partnership in other words; signing up to the coalition
        ("France says it is ready to lead post-war force in Ukraine", "", {"reassurance-force": "proposal"}),
        ("UK, Ukraine sign 'century partnership' treaty", "", {"uk-ua-100-year": "signed"}),
        ("Czech Republic signs up to coalition of the willing for Ukraine", "", {"reassurance-force": "proposal"}),
        ("Slovakia's Fico vows to block Ukraine's entry into NATO", "", {"ukraine-nato-membership": "discussion"}),
        # a role in the Ukraine mission; the future Ukraine force named bare; "Ukraine membership" without the 's
        ("German opposition questions Bundeswehr role in Ukraine mission", "", {"reassurance-force": "discussion"}),
        ("Allies still divided over mandate of future Ukraine force", "", {"reassurance-force": "discussion"}),
        ("NATO's Rutte: Ukraine membership not part of peace talks", "", {"ukraine-nato-membership": "discussion"}),
        # renouncing NATO as a noun; the "irreversible path" named without its goal; talking about the force
        ("Peace framework would enshrine Kyiv's renunciation of NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Allies reaffirm Ukraine's irreversible path at NATO summit", "", {"ukraine-nato-membership": "proposal"}),
        ("Ukraine on an 'irreversible' path to the alliance, NATO says", "", {"ukraine-nato-membership": "proposal"}),
        ("Defence chiefs talk about a Ukraine force in Brussels", "", {"reassurance-force": "discussion"}),
        # the US role in Ukraine's security; NATO admitting Ukraine in that order; membership "for Ukraine"
        ("Pentagon weighs US role in Ukraine's security", "", {"us-security-backstop": "discussion"}),
        ("Moscow demands that NATO never admit Ukraine", "", {"ukraine-nato-membership": "discussion"}),
        ("Membership for Ukraine is not on the NATO table", "", {"ukraine-nato-membership": "discussion"}),
        # a headline's speaker stands as a party ("Zelensky: giving up NATO ..."); the reassurance force named alone
        ("Zelensky: giving up NATO hopes was the price of peace", "", {"ukraine-nato-membership": "discussion"}),
        ("Macron: 'reassurance force' would not fight Russia", "", {"reassurance-force": "discussion"}),
        # Sweden as an ally backing Ukraine's bid, not as a member of its own
        ("Sweden supports Ukraine's NATO membership, Kristersson says", "", {"ukraine-nato-membership": "discussion"}),
        # giving up NATO with the subject a few words before
        (
            "Zelensky says Ukraine will not recognise occupied land or give up on NATO",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        # French: sending "militaires", a "force multinationale", a US "filet de sécurité", a "franco-ukrainien" pact
        ("La Belgique prête à envoyer des militaires en Ukraine", "", {"reassurance-force": "proposal"}),
        ("Les alliés discutent d'une force multinationale pour l'Ukraine", "", {"reassurance-force": "discussion"}),
        (
            "Zelensky réclame un « filet de sécurité » américain pour l'Ukraine",
            "",
            {"us-security-backstop": "discussion"},
        ),
        ("Accord de sécurité franco-ukrainien : un an après", "", {"fr-ua-2024": "discussion"}),
        # "militarily" is not "militari" (soldiers) with an ending
        (
            "Diplomats doubt Washington will commit to defend Ukraine militarily",
            "",
            {"us-security-backstop": "discussion"},
        ),
        # the coalition's nationalities; plans for troops in Ukraine; Ukraine never "a NATO member"; joining the mission
        ("Crosetto: no Italian soldiers for Ukraine without a UN mandate", "", {"reassurance-force": "discussion"}),
        ("Britain scales back plans for troops in Ukraine, report says", "", {"reassurance-force": "discussion"}),
        ("US envoy: Ukraine will never be a NATO member", "", {"ukraine-nato-membership": "discussion"}),
        ("Czech Republic ready to join Ukraine security mission", "", {"reassurance-force": "proposal"}),
        # a possessive after "in" is a party, not a place; Ukraine left "NATO-free"
        ("What's in Canada's security agreement with Ukraine?", "", {"ca-ua-2024": "discussion"}),
        ("Peace plan would leave Ukraine NATO-free, neutral", "", {"ukraine-nato-membership": "discussion"}),
        # the headline's clause-scoped exclusion ("US troops") does not explain away a summary sentence
        (
            "Trump rules out US troops for Ukraine, leaves door open to air support",
            "Europeans are preparing a force to be deployed after any ceasefire.",
            {"reassurance-force": "discussion", "us-security-backstop": "discussion"},
        ),
        # the US taking part in the European force; a UK-led effort; a second thing a plan does ("and bar")
        (
            "Pentagon says US will not take part in European force for Ukraine",
            "",
            {"us-security-backstop": "discussion", "reassurance-force": "discussion"},
        ),
        (
            "Canada, Australia join UK-led effort to secure Ukraine ceasefire with troops",
            "",
            {"reassurance-force": "proposal"},
        ),
        ("Peace draft would cap Ukraine's army and bar foreign troops", "", {"reassurance-force": "discussion"}),
        # a party who speaks of the guarantees before a colon; the Bundeswehr sent
        ("Rubio: Ukraine security guarantees are 'for Europe to lead'", "", {"us-security-backstop": "discussion"}),
        ("Germany's Pistorius cool on sending Bundeswehr to Ukraine", "", {"reassurance-force": "discussion"}),
        # a US "security promise"; guarantees the US put on the table
        (
            "Analysis: Trump's security promise to Ukraine is vague by design",
            "",
            {"us-security-backstop": "proposal"},
        ),
        (
            "Inside the Berlin talks where the US put guarantees for Ukraine on the table",
            "",
            {"us-security-backstop": "discussion"},
        ),
        # the force by its acronym, which names it alone
        ("Moscow says MNF-U deployment plans are 'militaristic fantasies'", "", {"reassurance-force": "discussion"}),
        # Ukraine named by one of its cities
        ("Dutch PM Rutte to sign security pact in Kharkiv", "", {"nl-ua-2024": "proposal"}),
        # a second thing said is read in its own clause
        (
            "Lavrov meets Rubio",
            "Lavrov said Moscow would not accept NATO troops in Ukraine and reiterated that Ukraine's membership of the"
            " alliance was unacceptable.",
            {"reassurance-force": "discussion", "ukraine-nato-membership": "discussion"},
        ),
        # a speaker before a colon, with a possessive; a speaker after a quote
        ("Ukraine's foreign minister: we won't give up on NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("'We won't give up on NATO,' Ukraine's foreign minister says", "", {"ukraine-nato-membership": "discussion"}),
        # a named alias whose party is in another clause gives way to the sentence's concept reading
        (
            "US weighs role in Ukraine guarantees as Europe pushes for backstop",
            "",
            {"us-security-backstop": "discussion"},
        ),
        # the Ukraine "security mission"; the 2024 US pact named beside the president who came after
        ("Germany says it will take part in Ukraine security mission", "", {"reassurance-force": "proposal"}),
        ("Biden, Zelenskiy sign security deal that Trump could undo", "", {"us-ua-2024": "signed"}),
        # Article 5 without NATO; troops offered as a noun; jets stationed in Ukraine after a ceasefire
        ("'Article 5 without NATO': what Europe could give Ukraine", "", {"it-article5-guarantee": "discussion"}),
        ("Two more countries make troop offers for the Ukraine coalition", "", {"reassurance-force": "proposal"}),
        ("France offers to station fighter jets in Ukraine after a ceasefire", "", {"reassurance-force": "proposal"}),
        # Ukraine's membership named in the other languages
        ("Nato, Rutte: l'adesione dell'Ucraina non è sul tavolo", "", {"ukraine-nato-membership": "discussion"}),
        ("Der Beitritt der Ukraine zur NATO bleibt ein Ziel", "", {"ukraine-nato-membership": "discussion"}),
        ("L'OTAN discute de l'adhésion de l'Ukraine", "", {"ukraine-nato-membership": "discussion"}),
        # blocking a move to invite invites no one; the Bundeswehr's deployment; a proposal tabled
        (
            "Hungary will block any move to invite Ukraine into NATO, Orban says",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        (
            "Merz says Bundeswehr deployment in Ukraine not on the table for now",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("Italy formally tables Article 5-style proposal for Ukraine", "", {"it-article5-guarantee": "proposal"}),
        # a member state is not the Union
        (
            "Ukraine and Portugal sign 10-year security agreement",
            "Portugal became the latest EU country to conclude a bilateral security deal with Kyiv.",
            {"other-eu-ua-bilateral-2024": "signed"},
        ),
        # a sentence that names another country's pact does not take the headline's country as its party
        (
            "Ukraine receives first F-16 squadron from Belgium",
            "The jets are part of the support coordinated under the 10-year security agreement Washington signed with"
            " Kyiv in June 2024.",
            {"us-ua-2024": "signed"},
        ),
        # a second stance is read in its own clause; a question asks, even with more after it
        (
            "Britain's Healey visits Kyiv",
            "Britain signed a 100-year partnership with Ukraine last month and is ready to put troops on the ground as"
            " part of a peacekeeping force.",
            {"uk-ua-100-year": "signed", "reassurance-force": "proposal"},
        ),
        (
            "La France prête à envoyer des soldats en Ukraine? Ce que dit Macron",
            "",
            {"reassurance-force": "discussion"},
        ),
        # volunteers' coalitions are Ukraine's civil society, not the coalition of the willing
        ("A coalition of volunteers is rebuilding homes in Kharkiv", "", {}),
        # another deal on the long-term security of something else; the EU's own mutual-defence clause
        ("Ukraine, Portugal sign deal on long-term security of energy supplies", "", {}),
        ("Article 5-style clause in EU treaty debated", "", {}),
        # guarantees of the kind a Senate ratifies, offered; vowing never to agree; a deployment approved; keeping
        # the peace in Ukraine; more of the coalition's nationalities
        (
            "US to offer Ukraine Senate-ratified guarantees modelled on NATO's Article 5",
            "",
            {"it-article5-guarantee": "proposal", "us-security-backstop": "proposal"},
        ),
        ("Fico vows Slovakia will never agree to Ukraine joining NATO", "", {"ukraine-nato-membership": "discussion"}),
        ("Czech government approves sending 100 troops to Ukraine mission", "", {"reassurance-force": "proposal"}),
        ("How many troops would Europe need to keep the peace in Ukraine?", "", {"reassurance-force": "discussion"}),
        ("Slovakia's Fico: Slovak soldiers will never go to Ukraine", "", {"reassurance-force": "discussion"}),
        # a command structure agreed; the coalition's logistics hub; guarantees on the model of Article 5; the
        # force named for Ukraine
        (
            "Coalition of the Willing agrees command structure for Ukraine force, led by UK and France",
            "",
            {"reassurance-force": "proposal"},
        ),
        ("Romania to host coalition's logistics hub for Ukraine force", "", {"reassurance-force": "discussion"}),
        (
            "Italy's Tajani: guarantees 'on the model of Article 5' are the best protection for Kyiv",
            "",
            {"it-article5-guarantee": "discussion"},
        ),
        ("Turkey offers to host naval component of Ukraine security force", "", {"reassurance-force": "proposal"}),
        # a peacekeeping role; troops ready for Ukraine; a plan endorsed; another country's own neutrality
        ("Germany signals willingness to consider Ukraine peacekeeping role", "", {"reassurance-force": "discussion"}),
        ("Macron, Starmer say 'several thousand' troops ready for Ukraine", "", {"reassurance-force": "proposal"}),
        ("Allies endorse plan for Europe-led Ukraine force", "", {"reassurance-force": "proposal"}),
        (
            "Ireland explores role in Ukraine peacekeeping mission despite neutrality",
            "",
            {"reassurance-force": "discussion"},
        ),
        # the idea of giving NATO up, floated; guarantees a floated plan includes; a pact put to paper or formalised
        (
            "US floats idea of Ukraine dropping NATO aspirations in exchange for guarantees",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        (
            "US floats 15-year security guarantee for Ukraine in revised peace plan",
            "The revised plan includes guarantees mirroring NATO's Article 5 for 15 years, officials said.",
            {"us-security-backstop": "proposal", "it-article5-guarantee": "proposal"},
        ),
        ("Finland and Ukraine put pen to paper on 10-year security deal", "", {"other-eu-ua-bilateral-2024": "signed"}),
        ("Ukraine, Belgium formalise security partnership", "", {"other-eu-ua-bilateral-2024": "signed"}),
        # the US underwriting a deal, or offering the European force something; a pact looked back on
        (
            "Europeans clash with Witkoff",
            "Witkoff said the United States would not underwrite any Ukraine deal militarily.",
            {"us-security-backstop": "discussion"},
        ),
        (
            "Pentagon briefs allies on what US can offer a European Ukraine force",
            "",
            {"us-security-backstop": "discussion", "reassurance-force": "discussion"},
        ),
        ("Britain's security agreement with Ukraine, one year on", "", {"uk-ua-2024": "signed"}),
        # servicemen sent; Kyiv's NATO prospects
        (
            "Over 200 British servicemen could be sent to Ukraine, Telegraph claims",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("West 'lied' to Kiev about NATO prospects, Orban says", "", {"ukraine-nato-membership": "discussion"}),
        # the guarantee's own names need no Ukraine beside them; another country's pact so named is not it
        (
            "Kallas: 'Article 5-like' guarantees must be credible, not paper promises",
            "",
            {"it-article5-guarantee": "discussion"},
        ),
        ("Israel wants 'Article 5-style' defence pact with US, officials say", "", {}),
        ("Philippines, Japan discuss 'Article 5-like' mutual defence clause", "", {}),
        # a force named by its strength; an agreement on long-term security cooperation
        ("UK, France draw up plan for 30,000-strong Ukraine force", "", {"reassurance-force": "discussion"}),
        (
            "Lithuania and Ukraine sign agreement on long-term security cooperation",
            "",
            {"other-eu-ua-bilateral-2024": "signed"},
        ),
        ("30,000-strong Russian force massing near Sumy, Ukraine says", "", {}),
        ("France showcases 500 pro-Ukraine troops at Bastille Day", "", {"reassurance-force": "discussion"}),
        # the US supporting "the force" a summary sentence speaks of
        (
            "Factbox: What Ukraine's allies have offered for its postwar security",
            "Britain and France have said they would deploy troops after a ceasefire. The United States has promised to"
            " support the force with intelligence and air defence, but not troops.",
            {"reassurance-force": "proposal", "us-security-backstop": "proposal"},
        ),
        # jets stationed in Ukraine, barred by a plan
        (
            "28-point plan bars European fighter jets from being stationed in Ukraine",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("Russian troops stationed in Ukraine's occupied south get new commander", "", {}),
        # another party's troops explain away the reading they stand before, not the one whose target they are;
        # Russia sending its own troops
        (
            "Any European contingent in Ukraine will become target for Russian forces, Medvedev says",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("Russian forces deployed to Ukraine's east face shortages", "", {}),
        ("Kremlin sends 10,000 more troops into Ukraine", "", {}),
        ("Russia sends warning to Britain over troops for Ukraine", "", {"reassurance-force": "discussion"}),
        ("Coalition of the willing meeting on Iran nuclear issue planned in Geneva", "", {}),
        # the US agreeing an Article 5-like offer is the backstop too; its commitment to NATO's own Article 5 is
        # neither; a Bundeswehr mission
        (
            "Trump administration agrees on 'Article 5-like' offer to Ukraine, officials say",
            "",
            {"it-article5-guarantee": "proposal", "us-security-backstop": "proposal"},
        ),
        ("Trump commits to NATO's Article 5 at Hague summit as Ukraine waits", "", {}),
        ("German cabinet divided over Bundeswehr mission in Ukraine", "", {"reassurance-force": "discussion"}),
        (
            "Slovakia's Fico refuses to sign security agreement with Ukraine",
            "",
            {"other-eu-ua-bilateral-2024": "discussion"},
        ),
        # the US providing air defence or intelligence for a ceasefire; not for the war
        (
            "US to provide air defence and intelligence for Ukraine ceasefire under Paris plan",
            "",
            {"us-security-backstop": "proposal"},
        ),
        ("US provides intelligence to Ukraine after brief pause in aid", "", {}),
        # a name split by quote marks still encloses the shorter alias it holds
        ("What would a US 'backstop' look like? Five scenarios", "", {"us-security-backstop": "discussion"}),
        # a pact in force, honoured; a party in a heading topic; Meloni's Article 5 named by her
        ("Italy-Ukraine: security agreement in force since February, Tajani reminds", "", {"it-ua-2024": "signed"}),
        ("Crosetto: Italy honours its 10-year security pact with Kyiv", "", {"it-ua-2024": "signed"}),
        ("Meloni's Article 5 idea: how it would work", "", {"it-article5-guarantee": "discussion"}),
        (
            "Meloni meets Zelenskiy in Rome",
            "The two discussed guarantees for Ukraine based on NATO's Article 5.",
            {"it-article5-guarantee": "discussion"},
        ),
        # dropping the NATO goal; not dropping charges or bombs where NATO is named
        (
            "Zelenskiy: Ukraine ready to hold referendum on dropping NATO goal",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        ("Ukraine drops charges against NATO volunteer", "", {}),
        # Russia's partisans called pro-Ukraine; police keeping the peace; troops to police a ceasefire
        ("Pro-Ukraine troops of the Freedom of Russia Legion attack Belgorod", "", {}),
        ("Police keep the peace in Ukraine's capital during protests", "", {}),
        ("UK troops to police Ukraine ceasefire", "", {"reassurance-force": "proposal"}),
        # Ukraine's own forces are not the Ukraine force
        ("Strong Ukraine forces repel attack near Kupiansk", "", {}),
        ("The Ukraine forces' morale is low, report says", "", {}),
        # Ukraine named by its negotiator; the UK's military hubs
        (
            "Witkoff and Kushner discuss security guarantees with Umerov in Miami",
            "",
            {"us-security-backstop": "discussion"},
        ),
        (
            "Britain announces plan to build military hubs across Ukraine after peace deal",
            "",
            {"reassurance-force": "proposal"},
        ),
        (
            "UK's plan to build 'military hubs' in Ukraine is provocation, Russian envoy says",
            "",
            {"reassurance-force": "discussion"},
        ),
        # a partner named by its capital; another country's neutrality named by the country
        (
            "Oslo, Kyiv seal long-term security deal as Norway pledges $1.1 billion",
            "",
            {"other-eu-ua-bilateral-2024": "signed"},
        ),
        (
            "Irish opposition questions neutrality implications of Ukraine security pact",
            "",
            {"other-eu-ua-bilateral-2024": "discussion"},
        ),
        ("Kremlin wants a neutral Ukraine, Peskov says", "", {"ukraine-nato-membership": "discussion"}),
        (
            "Republicans warn against US role in European peacekeeping force in Ukraine",
            "",
            {"us-security-backstop": "discussion", "reassurance-force": "discussion"},
        ),
        ("26 countries commit to post-war force for Ukraine, Macron says", "", {"reassurance-force": "proposal"}),
        ("Allies commit to a force for Ukraine", "", {"reassurance-force": "proposal"}),
        ("Hungary refuses to sign up to Ukraine force", "", {"reassurance-force": "discussion"}),
        (
            "Les chefs d'état-major de la coalition se réunissent à Paris pour préparer une force pour l'Ukraine",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("Велика Британія та Україна підписали угоду про безпекове співробітництво", "", {"uk-ua-2024": "signed"}),
        (
            "Les Alliés déclarent le chemin de l'Ukraine vers l'OTAN « irréversible »",
            "",
            {"ukraine-nato-membership": "proposal"},
        ),
        ("L'UE et l'Ukraine signent des engagements conjoints en matière de sécurité", "", {"eu-ua-2024": "signed"}),
        (
            "Washington pronta a fornire supporto aereo alla forza europea in Ucraina",
            "",
            {"us-security-backstop": "proposal", "reassurance-force": "proposal"},
        ),
        ("NATO says Ukraine's path to full membership is irreversible", "", {"ukraine-nato-membership": "proposal"}),
        (
            "How many troops would a Ukraine ceasefire force need? Analysts weigh in",
            "",
            {"reassurance-force": "discussion"},
        ),
        (
            "Ukraine refuses to enshrine NATO renunciation in its constitution",
            "",
            {"ukraine-nato-membership": "discussion"},
        ),
        # what the leading speaker does gives the stance of what follows the colon
        (
            "Meloni rilancia: garanzie per Kiev sul modello dell'articolo 5 della Nato",
            "",
            {"it-article5-guarantee": "proposal"},
        ),
        ("Macron proposes: European troops in Ukraine after a ceasefire", "", {"reassurance-force": "proposal"}),
        # a force named by when it serves; committing "a force" as well as troops; plans named by their troops
        ("European leaders in Kyiv back ceasefire, discuss post-war force", "", {"reassurance-force": "discussion"}),
        ("Vingt-six pays s'engagent à déployer une force en Ukraine", "", {"reassurance-force": "proposal"}),
        ("Allies ready to deploy a force to Ukraine once the guns fall silent", "", {"reassurance-force": "proposal"}),
        ("Europe scales back Ukraine troop plans amid US ambiguity", "", {"reassurance-force": "discussion"}),
        ("Europe's Ukraine mission takes shape as Britain names commander", "", {"reassurance-force": "discussion"}),
        ("Europe debates how many troops it could send to Ukraine", "", {"reassurance-force": "discussion"}),
        ("Germany will not take part in Ukraine ground force, Wadephul says", "", {"reassurance-force": "discussion"}),
        # in Ukrainian: agreeing to deploy; troops in the genitive; a peacekeeping mission; Biden as a party
        (
            "26 країн погодилися розмістити війська в Україні після припинення вогню",
            "",
            {"reassurance-force": "proposal"},
        ),
        (
            "Велика Британія і Франція підписали декларацію про розміщення військ в Україні",
            "",
            {"reassurance-force": "signed"},
        ),
        (
            "Начальники генштабів 30 країн обговорили миротворчу місію в Україні",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("Зеленський і Байден підписали безпекову угоду на 10 років", "", {"us-ua-2024": "signed"}),
        # in Italian: "the willing" as a noun; "manderà"; a speaker's infinitive; "offrono"
        ("Londra, vertice dei volenterosi: l'Italia non manderà truppe", "", {"reassurance-force": "discussion"}),
        ("I volenterosi si riuniscono a Parigi sull'Ucraina", "", {"reassurance-force": "discussion"}),
        (
            "Meloni al Consiglio europeo: estendere all'Ucraina l'ombrello dell'articolo 5",
            "",
            {"it-article5-guarantee": "proposal"},
        ),
        ("Gli Usa offrono a Kiev garanzie di sicurezza 'solide'", "", {"us-security-backstop": "proposal"}),
        (
            "Ministers meet at NATO headquarters to discuss Ukraine deterrence force",
            "",
            {"reassurance-force": "discussion"},
        ),
        (
            "Starmer: UK to put boots on the ground to secure Ukraine deal",
            "",
            {"reassurance-force": "proposal"},
        ),
        (
            "Dutch parliament backs sending up to 1,000 troops to Ukraine after ceasefire",
            "",
            {"reassurance-force": "proposal"},
        ),
        (
            "Macron: reassurance force would be stationed away from the front line",
            "",
            {"reassurance-force": "discussion"},
        ),
        # another country named in another clause explains nothing away ("... as Japan pledges more aid")
        ("US offers Ukraine security guarantees as Japan pledges more aid", "", {"us-security-backstop": "proposal"}),
        (
            "Trump backs Ukraine security guarantees; Japan, Korea tariffs loom",
            "",
            {"us-security-backstop": "discussion"},
        ),
        (
            "Meloni pitches NATO-like guarantee for Ukraine; Asian markets fall",
            "",
            {"it-article5-guarantee": "proposal"},
        ),
        (
            "France says first reassurance troops for Ukraine could deploy within weeks of a truce",
            "",
            {"reassurance-force": "discussion"},
        ),
        (
            "Lavrov: deployment of any Western military units in Ukraine would make them legitimate targets",
            "",
            {"reassurance-force": "discussion"},
        ),
        # sending in the future tense of French and Italian; a path "towards accession" with NATO in the speaker;
        # an offer "modelled on" Article 5 in German, its verb's prefix at the end of the clause
        ("Crosetto: l'Italia non invierà soldati in Ucraina", "", {"reassurance-force": "discussion"}),
        ("La France enverra des soldats en Ukraine après un cessez-le-feu", "", {"reassurance-force": "proposal"}),
        (
            "Nato, i leader: 'Irreversibile il percorso dell'Ucraina verso l'adesione'",
            "",
            {"ukraine-nato-membership": "proposal"},
        ),
        (
            "USA bieten der Ukraine Sicherheitsgarantien nach dem Vorbild von Artikel 5 an",
            "",
            {"us-security-backstop": "proposal", "it-article5-guarantee": "proposal"},
        ),
        # a name needs nothing beside it, an alias it overlaps needs Ukraine: the name reads it
        (
            "Meloni's NATO-style guarantee idea gains traction in Brussels talks",
            "",
            {"it-article5-guarantee": "discussion"},
        ),
    ],
)
def test_default_concepts_match_reports_that_use_no_alias(title: str, summary: str, expected: dict[str, str]) -> None:
    assert found(title, summary) == expected


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Russian troops advance near Pokrovsk in eastern Ukraine", ""),
        ("Ukrainian forces strike refinery deep inside Russia", ""),
        ("Ukraine must withdraw troops from four regions, Kremlin says", ""),
        ("Ukraine proposes joint drone production at NATO summit", ""),
        ("US to cut troops in Europe after Ukraine talks", ""),
        ("UK pledges largest military aid package to Ukraine", ""),
        ("Ukraine's EU accession talks open in Luxembourg", ""),
        ("NATO chief admitted Ukraine funding plan stalled", ""),
        ("Ukraine's bid to host the games fails", ""),
        ("Germany's armed forces grow as the Ukraine war drags on", ""),
        ("Romanian forces deployed in the border area with Ukraine did not fire", ""),
        ("Russia gives Iran intelligence to target US forces, as Ukraine talks stall", ""),
        ("Washington drifts away from backing Ukraine", ""),  # support in general is no backstop
        ("Allies hope to win the backing of a sceptical Trump for a Ukraine peace plan", ""),
        ("Give us security guarantees, Ukraine's leader tells allies", ""),  # "us", not the US
        ("Ukraine needs NATO air defence systems urgently", ""),
        ("Rutte invites Ukraine to the NATO summit in The Hague", ""),  # a guest, not a member
        ("Ukraine and NATO hold joint council meeting on drones", ""),
        ("EU advisory mission in Ukraine extended", ""),
        ("US special forces train in Poland near Ukraine border", ""),
        ("Ukraine becomes NATO's biggest arms buyer", ""),
        ("Kyiv allowed to use NATO weapons against targets inside Russia", ""),
        ("Western military presence in Baltic states grows as Ukraine war rages", ""),
        ("Poland to keep troops on Ukraine border", ""),
        ("Russia strikes Ukrainian military hubs in Kharkiv region", ""),
        ("Trump questions NATO's Article 5 commitment as Ukraine war drags on", ""),
        ("Ukraine retakes village with US support for its artillery", ""),
        ("Ukraine joins NATO cyber defence centre in Tallinn", ""),  # a NATO body, not the alliance
        ("Colombian volunteers join Ukraine forces near Kharkiv", ""),
        ("EU leaders won't promise Ukraine membership soon", ""),
        ("Germany to send more jets to Ukraine", ""),
        ("UK pledges funds to send US weapons to Ukraine", ""),  # "United States" holds no "unit"
        ("Ukraine's EU bid advances, but not without conditions", ""),
        ("Ukraine needs NATO air defence, not words", ""),
        ("Kyiv wants NATO allies to send more shells", ""),
        ("US pledges $300 million to protect Ukraine's energy grid", ""),
        ("US commits new funds to help defend Ukraine against drones", ""),
        ("Kyiv's deployment of new brigades stalls", ""),
        ("IAEA chief discusses mission in Ukraine with Zelensky", ""),
        ("Drone coalition for Ukraine meets in Riga", ""),
        ("Ukrainian security forces meet on Ukraine force protection drills", "Kyiv's own units trained."),
        ("Hungary keeps troops along the border as Ukraine war rages", ""),
        ("NATO says Ukraine's path to EU membership is its own affair", ""),
        ("EU ministers discuss advisory mission in Ukraine", ""),
        ("UN peacekeepers come under fire", "The UN mission's chief, once posted to Ukraine, condemned the attack."),
        ("Russian troops deployed after the war in Georgia stay, Ukraine notes", ""),
        ("Lithuania offers training to Ukrainian troops", ""),
        ("US urges Ukraine to protect its power grid", ""),
        ("US commits $300 million to protect Ukraine's energy grid", ""),
        ("Ukraine and Poland sign agreement on security of border crossings", ""),
        ("Ukraine earmarks funds for troops' pay", ""),
        ("Russia plans a new offensive force in Ukraine", ""),
        ("Kremlin prepares reserve force in Ukraine", ""),
        ("UK and Ukraine mark century of ties", ""),
        ("EU opens Ukraine membership talks", "NATO allies watched."),
        ("Russia forms a Ukraine force of volunteers", ""),
        ("Mutual defence pact between Poland and the Baltics covers Ukraine refugees' aid", ""),
        # another country's accession, done; troops sent years before the force was first proposed
        ("Finland marks a year in NATO", "The Nordic country joined the alliance after Russia's invasion of Ukraine."),
        ("Sweden holds its first drills as an ally", "The newest member of the alliance says it backs Ukraine."),
        ("France to lead NATO battlegroup in Romania", "Paris sent troops there in 2022 after Russia invaded Ukraine."),
        ("L'adhésion de l'Ukraine à l'UE avance", "Les alliés de l'OTAN observent."),
        ("Sweden formally joins NATO", "Sweden joined the alliance two years after Russia invaded Ukraine."),
        (
            "Finland to lift ban on hosting nuclear arms",
            "Neutral in the Cold War, the country in 2023 joined the NATO military alliance in response to Russia's"
            " invasion of Ukraine.",
        ),
        ("'Article 5 means what it says,' Rutte warns Moscow", "Allies also discussed aid to Ukraine."),
        ("Neutral Ireland sends more aid to Ukraine", ""),
        ("Ukraine : la Pologne envoie des soldats à la frontière biélorusse", ""),
        # a reading that takes Ukraine from the headline takes its exclusions too; troops leaving are not sent
        (
            "Board of Peace meets on Gaza as Ukraine talks stall",
            "The board discussed an international stabilisation force.",
        ),
        ("French troops leave Chad as Macron focuses on Ukraine", ""),
        ("Lavrov: security guarantees for Ukraine without Russia lead nowhere", ""),
        ("MNF-I commander visits Baghdad", "The US-led force in Iraq once counted Ukrainian troops."),
        ("France offers to station fighter jets in Poland", "Paris also backs Ukraine."),
        ("Finland and Sweden join NATO exercise", "Finland's NATO membership helps Ukraine, officials say."),
        ("Putin pledges to use force in Ukraine until goals are met", ""),
        ("Russia's postwar force in Ukraine's occupied regions", ""),
        ("Russia commits more forces to Ukraine offensive", ""),
        ("Zelensky en chemin vers le sommet de l'OTAN à La Haye", ""),
        ("Ukraine's path to EU membership is irreversible, von der Leyen says", ""),
        ("NATO summit: Ukraine's path to membership of the EU discussed", ""),
        ("Gaza ceasefire force: Indonesia ready to send troops", "Ukraine's allies watch the mission closely."),
        ("Hungary's Orban renounces NATO exercise as Ukraine war rages", ""),
        ("La Russie recourt à la force en Ukraine, dit l'ONU", ""),
        ("Ukraine's post-war armed forces to be capped at 600,000", ""),
        ("EU agrees post-war reconstruction mission for Ukraine", ""),
        ("UN's Ukraine mission reports rise in civilian deaths", ""),
        ("Russia is sending more troops to the front line in Ukraine", ""),
        ("Росія погодилася направити війська до кордону України", ""),
        ("Розширення санкцій проти Росії: Україна вітає рішення ЄС", ""),
        ("Studenti volenterosi aiutano i profughi ucraini a Milano", ""),
        ("US to cut soldiers in Europe to lowest level since before Ukraine invasion", ""),
        (
            "Armenia and US sign strategic partnership charter update",
            "Yerevan is seeking Western security guarantees amid tensions with Azerbaijan; the war in Ukraine was "
            "also discussed.",
        ),
        ("Ucraina: i giovani volenterosi ricostruiscono le scuole", ""),
        ("NATO deterrence force in Lithuania grows as Ukraine war rages", ""),
        ("Germany sends brigade to Lithuania as NATO battlegroup grows; Ukraine watches", ""),
        ("Russia backs sending more troops to Ukraine front", ""),
        ("Kremlin says troops it sent to Ukraine will stay until its goals are met", ""),
        ("How many troops Russia could still send to Ukraine", ""),
        ("Russia says foreign mercenary units in Ukraine were hit near Kharkiv", ""),
        ("Canada extends Operation Reassurance in Latvia as Ukraine war drags on", ""),
        ("Washington weighs Taiwan security guarantees while Ukraine peace push continues", ""),
        ("Japan and Philippines sign NATO-like defence pact as Ukraine war rages", ""),
        ("US offers Saudi Arabia security guarantees as Ukraine talks stall", ""),
        (
            "Russia is providing Iran intelligence to target US forces",
            "The United States has given Ukraine intelligence during its war with Russia.",
        ),
        ("NATO reassurance mission in Romania grows as Ukraine war continues", ""),
        ("Allies boost eastern flank troops as Ukraine war continues", ""),
        ("European Ukraine mission of the IAEA rotates staff at Zaporizhzhia plant", ""),
        ("L'inviato speciale per l'Ucraina visita Kharkiv con i soldati feriti", ""),
        ("Il percorso dell'Ucraina verso l'adesione all'UE è irreversibile", ""),
        ("La Francia invierà aiuti umanitari in Ucraina", ""),
        ("Russia deploys a force of 50,000 near Ukraine's Sumy region", ""),
    ],
)
def test_default_concepts_keep_look_alikes_apart(title: str, summary: str) -> None:
    assert found(title, summary) == {}


def test_concept_hit_scores_below_a_named_alias() -> None:
    [concept] = default_matcher().match("Ukraine, Japan agree 10-year defence pact", "")
    [named] = default_matcher().match("Ukraine, Japan agree security pact", "")
    assert concept.score == CONCEPT_SCORE < named.score == 1.0
    assert concept.alias == "10 year defence pact"


# ---------------------------------------------------------------- exclusions narrow
EXCLUDING = [
    ProposalConfig(
        id="force",
        title="Force",
        aliases=["peacekeepers"],
        required=["Ukrain*"],
        excluded=["training"],
    )
]


def test_excluded_term_no_longer_vetoes_an_item_that_reports_the_proposal_elsewhere() -> None:
    matcher = Matcher(EXCLUDING)
    # the headline's peacekeepers are explained by training; the summary's are not
    title = "Ukraine peacekeepers training ends"
    summary = "Europe pledged peacekeepers for Ukraine after a ceasefire."
    [match] = matcher.match(title, summary)
    assert match.sentences == (summary,) and match.status == "proposal"
    # the sentence the exclusion stands in is explained away, and with only that sentence, nothing matches
    assert matcher.match("Peacekeepers training in Ukraine", "") == []


def test_a_summary_sentence_whose_subject_is_the_headlines_party_gives_its_status() -> None:
    arrived = "British Prime Minister Rishi Sunak arrived on Friday."
    signed = found("Sunak in Kyiv", f"{arrived} He signed an agreement on security cooperation with Zelensky.")
    assert signed == {"uk-ua-2024": "signed"}
    other = found("Sunak in Kyiv", f"{arrived} He said Kyiv had signed security agreements with Germany and France.")
    # Germany's and France's pacts, named in the sentence: not the headline's party's
    assert "uk-ua-2024" not in other and other["de-ua-2024"] == other["fr-ua-2024"] == "signed"


def test_a_headline_that_signs_a_deal_gives_the_status_of_the_pact_its_summary_names() -> None:
    """The summary names the pact and its party, the headline the party's act; not when the headline's deal is
    another ("minerals deal")."""
    summary = "The 10-year bilateral security agreement commits the US to training Ukraine's forces."
    day = date(2024, 6, 13)
    signed = default_matcher().match("Biden, Zelensky sign deal at G7", summary, day)
    minerals = default_matcher().match("Biden, Zelensky sign minerals deal", summary, day)
    assert [(m.proposal, m.status) for m in signed] == [("us-ua-2024", "signed")]
    assert [(m.proposal, m.status) for m in minerals] == [("us-ua-2024", "discussion")]


def test_the_white_house_is_a_party_to_the_2024_us_pact() -> None:
    title = "White House releases text of 10-year security agreement signed with Ukraine"
    found_then = default_matcher().match(title, "", date(2024, 6, 14))
    assert [(m.proposal, m.status) for m in found_then] == [("us-ua-2024", "signed")]


def test_a_pact_in_force_is_not_the_force() -> None:
    stays = found("Ukraine's security accord with the US stays", "The agreement signed in Italy remains in force.")
    assert "reassurance-force" not in stays and "us-ua-2024" in stays


def test_a_speaker_is_not_taken_for_the_party_that_commits() -> None:
    found_here = found("Hegseth: any troops sent to Ukraine as peacekeepers should not be a NATO mission")
    assert "us-security-backstop" not in found_here and found_here["reassurance-force"] == "discussion"


def test_us_offer_mentioning_article_5_reports_both_proposals() -> None:
    assert found("US offers Ukraine security guarantees similar to Article 5") == {
        "us-security-backstop": "proposal",
        "it-article5-guarantee": "proposal",
    }


# ---------------------------------------------------------------- what the sentence does -> status
@pytest.mark.parametrize(
    ("text", "level"),
    [
        # proposal: pledging, vowing, offering, announcing, ready or willing to, committing troops
        ("the UK is ready and willing to put troops on the ground", "proposal"),
        ("Starmer announces a coalition to guarantee the peace", "proposal"),
        ("26 countries pledged troops to guarantee a ceasefire", "proposal"),
        ("UK and France agree to deploy forces after a peace deal", "proposal"),
        ("UK to spend $270 million on troops for the force", "proposal"),
        ("Zelensky says the US guarantees are 100% ready", "proposal"),
        ("British general takes command of the multinational force", "proposal"),
        ("Sweden is open to sending troops", "proposal"),
        ("the US will help Europe with the guarantees", "proposal"),
        ("the US agreed to offer Article 5-like protection", "proposal"),
        ("allies commit to a multinational force", "proposal"),
        ("Ukraine's path to full Euro-Atlantic integration, including NATO membership, is irreversible", "proposal"),
        ("coalition leaders commit 10,000 troops", "proposal"),
        ("US ready to offer guarantees modelled on Article 5", "proposal"),
        ("Meloni rilancia le garanzie sul modello dell'articolo 5", "proposal"),
        ("l'Italia e pronta a inviare truppe", "proposal"),
        ("Macron annonce une force de reassurance", "proposal"),
        ("Deutschland ist bereit, Soldaten zu entsenden", "proposal"),
        ("Британія готова відправити війська", "proposal"),
        # signed: signing, inking, concluding, sealing, getting a pact
        ("Ukraine gets $1B in arms and security pact with Spain", "signed"),
        ("Zelenskyy and De Croo sign new security pact", "signed"),
        ("Kyiv secures a 10-year deal with Oslo", "signed"),
        ("Italia e Ucraina hanno firmato l'accordo", "signed"),
        ("la France et l'Ukraine ont signe un accord", "signed"),
        ("Deutschland und die Ukraine haben das Abkommen unterzeichnet", "signed"),
        ("Україна та Японія підписали угоду", "signed"),
        ("the Rada ratified the security agreement", "signed"),
        ("the Senate is due to ratify the guarantees", "proposal"),
        # discussion: talks, doubts, conditions, refusals, dropped bids, wishes
        ("Putin pledges cease-fire if Ukraine drops NATO bid", "proposal"),  # the pledge is the ceasefire's
        ("the deal will only succeed if Trump offers security guarantees", "discussion"),
        ("Germany likely too stretched to provide troops", "discussion"),
        ("the West wants to send troops over civil war fears", "discussion"),
        ("the UK is not ready to deploy troops", "discussion"),
        ("Poland is not open to sending troops", "discussion"),
        ("firmer guarantees would help cement US commitments", "discussion"),
        ("Ukraine will be invited when allies agree and conditions are met", "discussion"),
        ("the parliament has not ratified the agreement", "discussion"),
        ("allies meet with aim to make security pledges concrete", "discussion"),
        ("NATO stops short of promising membership", "discussion"),
        ("admission to NATO would lead to war, Orban says", "discussion"),
        ("Trump rules out US troops", "discussion"),
        ("l'Italia non e pronta a inviare truppe", "discussion"),
        ("la France n'est pas prete a envoyer des troupes", "discussion"),
        ("Deutschland ist nicht bereit, Soldaten zu entsenden", "discussion"),
        ("Британія не готова відправити війська", "discussion"),
        ("Merz lehnt die Entsendung von Soldaten ab", "discussion"),
        ("i leader discutono le garanzie di sicurezza", "discussion"),
        ("the 30 invited leaders discuss a force for Ukraine", "discussion"),  # guests, not an invitation
        ("NATO invited Ukraine to join", "proposal"),
        # agreeing to a commitment, or a pact, is making it; refusing to agree is not
        ("the US agreed to Article 5-like protection", "proposal"),
        ("Russia is unlikely to agree to Western troops", "discussion"),
        ("Norway and Ukraine agree a security pact", "signed"),
        ("the EU is ready to agree security commitments", "discussion"),
        ("the allies agree to discuss a security pact", "discussion"),
        ("Zelensky says US security assurances for Ukraine are ready", "proposal"),
        # a question still open is no commitment
        ("leaders are weighing whether to station troops in Ukraine", "discussion"),
        ("Trump has not said whether the United States would back a European force", "discussion"),
        ("allies debate how to guarantee a ceasefire", "discussion"),
        # the signing of a pact is a signing, unless it is awaited; establishing military hubs is a commitment
        ("the signing of the declaration paves the way for the force", "signed"),
        ("leaders await the signing of the agreement", "proposal"),
        ("the UK and France will establish military hubs across Ukraine", "proposal"),
        ("coalition countries confirm troop contributions", "proposal"),
        # troops that arrive or begin to deploy, a force that becomes operational; a text initialled
        ("the first British troops arrive in Ukraine", "proposal"),
        ("French soldiers begin deployment to western Ukraine", "proposal"),
        ("the force's headquarters reaches full operational capability", "proposal"),
        ("Zelensky arrives in Paris for the summit", "discussion"),
        ("the two sides initialled the guarantees text", "proposal"),
        ("initial talks on the guarantees text", "discussion"),
        # a plan or offer dropped or walked back is no longer made
        ("Britain drops plan to send troops", "discussion"),
        ("the US walks back its offer of guarantees", "discussion"),
        # committing units, opening a headquarters, adopting a declaration
        ("Germany commits a brigade to the mission", "proposal"),
        ("the force's headquarters opens in Kyiv", "proposal"),
        ("Britain opens the force's command centre", "proposal"),
        ("the coalition adopts a declaration on the force", "signed"),
        ("Russia opens talks on the force", "discussion"),
        # hailing a new pact celebrates one concluded; hailing its talks or progress does not
        ("the president hailed a new security agreement", "signed"),
        ("Zelensky hails progress toward a security pact", "discussion"),
        ("leaders hail security pact talks", "discussion"),
        ("the allies won't promise membership", "discussion"),  # "won't" negates as "will not" does
        ("an offer of NATO membership would end the war", "discussion"),  # an offer imagined, not made
        # a plural subject's offer; a document finalised; a pact wanted ratified is not ratified
        ("the US and Europe offer Ukraine 'Article 5-like' protection", "proposal"),
        ("the two sides finalise the guarantees document", "proposal"),
        ("Kyiv needs the guarantees ratified by Congress", "discussion"),
        ("the guarantees are to be ratified by the Senate", "proposal"),
        # pitching and floating are proposing; quotes do not hide openness; taking part in the future
        ("Meloni pitches an Article 5-type guarantee", "proposal"),
        ("Rome floated a mutual defence clause", "proposal"),
        ("Canada is 'open' to contributing troops", "proposal"),
        ("the US will be involved in the guarantees", "proposal"),
        # declining to commit is refusing; a headline's "X to send" whose subject declines is no offer
        ("Washington declines to commit troops", "discussion"),
        ("Trump declines to commit US to defend Ukraine", "discussion"),
        ("UK to defend Ukraine's skies with jets", "proposal"),
        # what someone will or would do, asked ("clarity on what Washington will contribute")
        ("Europe seeks clarity on what Washington will contribute to Ukraine guarantees", "discussion"),
        ("it is unclear whether the US would provide air cover", "discussion"),
        ("the US will provide air cover, whether or not Europe sends troops", "proposal"),
        # vowing to block proposes nothing; signing up to a coalition is joining it, not signing a text
        ("Fico vows to block Ukraine's entry", "discussion"),
        ("Hungary threatens to veto the invitation", "discussion"),
        ("Fico vows to support Ukraine's entry", "proposal"),
        ("the Czech Republic signs up to the coalition", "proposal"),
        # finalising plans is more than talking of them; a headline's "X to unveil" announces an offer
        ("coalition countries finalise plans for the force", "proposal"),
        ("leaders fail to finalise plans for the force", "discussion"),
        ("Starmer to unveil a 100-year partnership", "proposal"),
        ("allies to discuss plans for the force", "discussion"),
        # a commitment doubted; a plan that bars what it names; a text that drops its mention; "X to agree" a pact
        ("diplomats doubt Washington will back the force", "discussion"),
        ("allies fear the US would not commit", "discussion"),
        ("Les Européens doutent que Washington s'engage à garantir la paix", "discussion"),
        ("Roma dubita che Washington offrirà garanzie", "discussion"),
        ("Berlin bezweifelt, dass Washington der Ukraine Garantien zugesagt hat", "discussion"),
        ("У Києві сумніваються, що США нададуть гарантії", "discussion"),
        ("the draft peace plan bars NATO troops from Ukraine", "discussion"),
        ("the communique drops any mention of Ukraine's irreversible path", "discussion"),
        ("UK to agree a 100-year partnership with Ukraine", "proposal"),
        # a pact with an anniversary, or a party's pact named by its past year, is signed; years of talks are not
        ("Ukraine and Japan mark two years of the security accord", "signed"),
        ("Ukraine and Japan mark two years of talks on a security accord", "discussion"),
        ("Carney reaffirms Canada's 2024 security agreement with Ukraine", "signed"),
        # a quoted word reads as itself; a headline's "X to offer" offers, a subject that only wants to does not
        ("US will 'be involved' in the guarantees, Trump says", "proposal"),
        ("Starmer to offer Ukraine a '100-year partnership'", "proposal"),
        ("Kyiv wants allies to offer guarantees", "discussion"),
        # the latest to sign has signed; the first who would be is not
        ("Iceland becomes latest country to sign security pact with Ukraine", "signed"),
        ("Iceland would be the first country to sign such a pact", "proposal"),
        # joining the force or the effort commits to it; joining that is refused or only possible does not
        ("Canada and Australia join UK-led effort to secure Ukraine ceasefire", "proposal"),
        ("Turkey may join the force", "discussion"),
        ("Poland won't join the coalition's mission", "discussion"),
        ("Japan refuses to join the mission", "discussion"),
        ("US envoys join in 'Coalition of the Willing' talks", "discussion"),
        ("Belgium commits F-16s and troops to the mission", "proposal"),
        # a commitment hoped for; a pact that marks an anniversary
        ("Zelensky hopes US Congress will back security guarantees soon", "discussion"),
        ("Italy-Ukraine agreement on security cooperation marks second anniversary", "signed"),
        # a peace awaited is no signing
        ("European troops could go to Ukraine once peace is signed", "discussion"),
        # what is done under a pact in force; not under a peace deal or a pact still proposed
        ("Japan pledges $4.5 billion under new security accord with Ukraine", "signed"),
        ("Ukraine would get guarantees under a peace deal", "discussion"),
        ("aid would flow under a proposed security accord", "proposal"),
        # ready to join the mission; not Ukraine ready to join NATO, which only NATO can offer
        ("the Czech Republic is ready to join the mission", "proposal"),
        ("Ukraine is ready to join NATO", "discussion"),
        # an offer few have made
        ("few countries have pledged soldiers to the force", "discussion"),
        ("many countries have pledged soldiers to the force", "proposal"),
        # "any guarantees offered" supposes an offer; "the guarantees offered" reports one
        ("Russia will study any US security guarantees offered to Kiev", "discussion"),
        ("Russia rejects the US security guarantees offered to Kiev", "proposal"),
        # how someone plans to do it, explained, is no plan announced
        ("how Europe plans to protect Ukraine", "discussion"),
        ("how the coalition will deploy its troops", "discussion"),
        # the future of sending, negated
        ("l'Italia non invierà soldati in Ucraina", "discussion"),
        ("la France n'enverra pas de troupes", "discussion"),
        ("l'Italia invierà soldati in Ucraina", "proposal"),
        # a path to membership declared irreversible, in French, Italian and German too
        ("le chemin de l'Ukraine vers l'OTAN est irréversible", "proposal"),
        ("il percorso dell'Ucraina verso la Nato è irreversibile", "proposal"),
        ("der Weg der Ukraine in die NATO ist unumkehrbar", "proposal"),
        ("les alliés jugent « irréversible » le chemin de l'Ukraine vers l'Alliance", "proposal"),
        ("USA bieten der Ukraine Sicherheitsgarantien nach dem Vorbild von Artikel 5 an", "proposal"),
        ("Merz sagt, es komme auf die Bedingungen an", "discussion"),
        ("some countries are wary of committing forces", "discussion"),
        ("La France et l'Ukraine concluent un accord de sécurité", "signed"),
        ("Italia e Ucraina concludono l'accordo di sicurezza", "signed"),
        ("Deutschland und Ukraine besiegeln Sicherheitsabkommen", "signed"),
        ("Deutschland und die Ukraine schließen Sicherheitsabkommen", "signed"),
        ("Le rapport conclut que les accords de Minsk ont échoué", "discussion"),
        ("Macron conclut sa visite à Kiev", "discussion"),
        ("Ukraine secures security pact with Japan", "signed"),
        ("One year on, Germany's security agreement with Ukraine has delivered", "signed"),
        ("One year on, talks on a pact stall", "discussion"),
        ("One year on, the war grinds on and the deal is far away", "discussion"),
        ("Canada and Ukraine renew security agreement", "signed"),
        ("Canada to renew security agreement with Ukraine", "discussion"),
        ("Ukraine and Greece agree text of bilateral security accord", "proposal"),
        ("Allies agree that the plan needs work", "discussion"),
        ("Crosetto: inviare soldati in Ucraina? Non ora", "discussion"),
        ("Australia says it is 'open to considering' contributing to Ukraine peacekeeping", "discussion"),
        ("Britain will send troops after considering the options", "proposal"),
        ("Denmark is ready to send troops, having weighed the risks", "proposal"),
        ("Meloni non vuole inviare soldati in Ucraina", "discussion"),
        ("Europe does not dare send troops", "discussion"),
        ("Macron : envoyer des troupes en Ukraine après un cessez-le-feu", "proposal"),
        ("UK to put boots on the ground to secure Ukraine deal", "proposal"),
        ("Tusk denies plans to send Polish troops", "discussion"),
        ("Tusk dismisses reports Poland will send troops", "discussion"),
        ("Britain will send troops, Starmer says, denying reports of delay", "proposal"),
        ("Berlin remains reluctant to send soldiers", "discussion"),
        ("Britain is ready to send soldiers", "proposal"),
        ("Die Soldaten bleiben an der Grenze, sagt der Minister", "discussion"),
        ("26 країн зобов'язалися направити війська в Україну", "proposal"),
        ("the draft peace plan offers Ukraine guarantees", "proposal"),
    ],
)
def test_status_cue_by_what_the_sentence_does(text: str, level: str) -> None:
    assert read_cue(folded(text)).level == level


def test_a_description_of_an_agreement_is_read_apart_from_its_signing() -> None:
    # the pact is inked; NATO membership is only what the pact is billed as leading to
    assert found("Ukraine and Norway ink 10-year pact billed as a precursor to NATO") == {
        "other-eu-ua-bilateral-2024": "signed",
        "ukraine-nato-membership": "discussion",
    }


def test_a_named_alias_wins_over_a_generic_one_that_ties() -> None:
    [match] = default_matcher().match("Fresh doubts over American security guarantees", "")
    assert match.proposal == "us-security-backstop" and match.alias == "American security guarantees"


def test_a_conditional_clause_gives_its_own_status() -> None:
    # the pledge belongs to the ceasefire; the membership sits in the "if" clause and is only discussed
    assert found("Putin pledges cease-fire if Ukraine drops NATO bid") == {"ukraine-nato-membership": "discussion"}


def test_config_refuses_a_concept_part_that_names_no_term(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "sources: []\nproposals:\n  - id: p\n    title: P\n    concepts:\n      - parts: [troops, '* | ']\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert "feeds.yaml:6" in str(raised.value) and "names no term" in str(raised.value)


@pytest.mark.parametrize("label", ["UPDATE 2-", "Exclusive: ", "Analysis-", "WATCH: ", "REFILE-UPDATE 1-", "Factbox: "])
def test_a_wire_label_before_a_headline_does_not_change_its_reading(label: str) -> None:
    title = "While Russian forces advance, Britain pledges troops for Ukraine"
    assert found(label + title) == found(title) == {"reassurance-force": "proposal"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("While Russian forces advance, allies plan a force", ["while russian forces advance", "allies plan a force"]),
        ("If Kyiv drops its bid, talks resume", ["if kyiv drops its bid", "talks resume"]),
        ("Allies, partners and friends meet", ["allies, partners and friends meet"]),  # a list is one clause
        ("Defence pact billed as a NATO precursor", ["defence pact", "billed as a nato precursor"]),
        ("Germany signs pact as France weighs troops", ["germany signs pact", "as france weighs troops"]),
        ("UK pledges troops after Trump rules out more", ["uk pledges troops", "after trump rules out more"]),
        ("Troops pledged as part of a deal", ["troops pledged as part of a deal"]),  # "as part of" joins
        ("Zelensky: if membership fails, guarantees", ["zelensky", "if membership fails", "guarantees"]),
        (
            "Lavrov rejected troops and reiterated that membership",
            ["lavrov rejected troops", "and reiterated that membership"],
        ),
        ("Allies plan troops and jets", ["allies plan troops and jets"]),
        ("Troops for Ukraine? What Macron said", ["troops for ukraine?", "what macron said"]),
        ("Britain signed a pact and is ready to send troops", ["britain signed a pact", "and is ready to send troops"]),
        ("Britain signed a pact and has said troops", ["britain signed a pact", "and has said troops"]),
    ],
)
def test_clauses_of_a_sentence(text: str, expected: list[str]) -> None:
    sentence = folded(text)
    assert [sentence[start:end].strip() for start, end in clauses(sentence)] == expected


def test_an_excluded_term_in_another_clause_does_not_explain_a_name_away() -> None:
    names = [
        ProposalConfig(
            id="force",
            title="Force",
            aliases=["coalition of the willing", "troops to Ukraine"],
            names=["coalition of the willing"],
            required=["Ukrain*"],
            excluded=["Russian forces", "nuclear war"],
        )
    ]
    matcher = Matcher(names)
    [match] = matcher.match("While Russian forces pound Ukraine, Kyiv hosts the coalition of the willing", "")
    assert match.proposal == "force"
    # in the name's own clause the term still explains it away; a mere alias is explained away by the sentence
    assert matcher.match("Russian forces shell the coalition of the willing's Ukraine base", "") == []
    assert matcher.match("After a call for troops to Ukraine, Putin warns of nuclear war", "") == []


def test_a_reading_scoped_term_explains_away_the_reading_it_stands_before_not_the_one_it_follows() -> None:
    force = ProposalConfig(
        id="force",
        title="Force",
        aliases=["troops to Ukraine", "European contingent"],
        required=["Ukrain*"],
        excluded_in_reading=["Russian forces"],
    )
    matcher = Matcher([force])
    assert matcher.match("Russian forces and troops to Ukraine", "") == []  # before it, in its clause
    [match] = matcher.match("A European contingent in Ukraine would be a target for Russian forces", "")
    assert match.proposal == "force"  # after it: the reading's target, not its party
    [match] = matcher.match("Russian forces advance; a European contingent for Ukraine is planned", "")
    assert match.proposal == "force"  # another clause
    as_clause = Matcher(
        [force.model_copy(update={"excluded_in_reading": [], "excluded_in_clause": ["Russian forces"]})]
    )
    assert as_clause.match("A European contingent in Ukraine would be a target for Russian forces", "") == []


def test_the_concept_reported_does_not_depend_on_the_hash_seed() -> None:
    import os
    import subprocess
    import sys

    script = """
from monitor.config import DEFAULT_CONFIG_PATH, load_config
from monitor.match import Matcher
matcher = Matcher(load_config(DEFAULT_CONFIG_PATH, env={}).proposals)
for title in [
    'Macron says France could send "several thousand" soldiers to Ukraine after ceasefire',
    "Ukraine's admission to EU and NATO would lead to war with Russia - Orban",
    "Paris readies plans for possible Ukraine deployment of peacekeeping troops",
]:
    print([(m.proposal, m.alias) for m in matcher.match(title, "")])
"""
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            check=True,
        ).stdout
        for seed in range(8)
    ]
    assert runs[0].count("reassurance-force") >= 2
    assert runs == [runs[0]] * len(runs)  # the same words reported as evidence, whatever the seed


def test_a_clause_scoped_exclusion_explains_away_only_its_own_clause() -> None:
    force = ProposalConfig(
        id="force",
        title="Force",
        aliases=["troops to Ukraine"],
        required=["Ukrain*"],
        excluded=["nuclear war"],
        excluded_in_clause=["US troops"],
    )
    matcher = Matcher([force])
    assert [m.proposal for m in matcher.match("UK sends troops to Ukraine after Trump rules out US troops", "")] == [
        "force"
    ]
    assert matcher.match("Trump rules out sending US troops to Ukraine", "") == []  # the same clause
    assert matcher.match("UK sends troops to Ukraine after Putin warns of nuclear war", "") == []  # the sentence
