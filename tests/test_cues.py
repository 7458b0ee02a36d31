"""Status cue rules: modality, negation, tense, headline style and each language, read one clause at a time."""

from __future__ import annotations

import pytest

from monitor.cues import Passage, ladder_status, read_cue, read_status
from monitor.match import fold_text, normalize_text


def cue(text: str) -> str:
    return read_cue(fold_text(normalize_text(text))).level


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # headline style and plain past
        ("Ukraine, Japan ink 10-year pact", "signed"),
        ("Germany and Ukraine sign 'long term' security deal", "signed"),
        ("Ukraine signs security pacts with Germany, France", "signed"),
        ("Biden strikes security deal with Zelenskyy", "signed"),
        ("The security agreement was finalized during a meeting in Kharkiv", "signed"),
        ("The pact entered into force last month", "signed"),
        # a past signing mentioned later, even in a hypothetical sentence
        ("One option would be a bilateral agreement between Rome and Kyiv, signed in 2024", "signed"),
        ("Under the accord Britain signed in January, London promised aid", "signed"),
        # modality -> proposal
        ("UK's Starmer to sign 100-year treaty with Zelenskyy", "proposal"),
        ("Zelensky will sign a similar agreement with France later in the day", "proposal"),
        ("Kyiv plans to sign a security pact with Tokyo", "proposal"),
        ("Canada is ready to sign the agreement", "proposal"),
        ("UK pledges funding before signing 'historic' security agreement", "proposal"),
        ("The agreement is expected to be signed next week", "proposal"),
        # negation -> not signed
        ("Ukraine has not signed the security pact", "discussion"),
        ("Hungary refused to sign the declaration", "discussion"),
        ("The two sides haven't finalized the deal", "discussion"),
        ("The treaty is yet to be signed", "discussion"),
        # a plan put forward, announced; not one that only could be or is not
        ("Meloni will pitch guarantees for Ukraine in Washington", "proposal"),
        ("The EU is set to propose security commitments", "proposal"),
        ("Italy will table an Article 5-style plan", "proposal"),
        ("Italy could propose guarantees", "discussion"),
        ("Italy will not propose guarantees", "discussion"),
        # guarantees of the kind a Senate ratifies, on offer; a pact put to paper; vowing never to agree
        ("US to offer Senate-ratified guarantees", "proposal"),
        ("Finland and Ukraine put pen to paper on a security deal", "signed"),
        ("Fico vows Slovakia will never agree to it", "discussion"),
        # what someone would give, named in a relative clause, is not given; what they would give, said, is offered
        ("Europeans seek clarity on the guarantees Washington would provide", "discussion"),
        ("What protection the US would give Ukraine remains unclear", "discussion"),
        ("Washington would provide guarantees, Rubio says", "proposal"),
        ("Allies say troops from Britain would deploy to Ukraine", "proposal"),
        # a package or a command structure agreed; meeting to settle plans
        ("NATO allies agree 'bridge to membership' package for Ukraine", "proposal"),
        ("The coalition agrees command structure for the force", "proposal"),
        ("Chiefs meet to finalise force plans", "discussion"),
        # a plan that includes, or allies who endorse, a ban or a denial propose nothing
        ("Zelensky endorses US peace plan that bars NATO membership", "discussion"),
        ("Kremlin's draft includes a ban on Ukraine joining NATO", "discussion"),
        ("The plan includes no US security guarantees for Ukraine", "discussion"),
        ("US plan includes security guarantees for Ukraine", "proposal"),
        ("Russia will present demands including Ukraine's neutrality", "discussion"),
        ("US agrees to include 'Article 5-style' clause in guarantees", "proposal"),
        ("US agrees to include a ban on NATO membership", "discussion"),
        ("The agreement remains in force", "signed"),
        ("Dutch PM Schoof: our 2024 security pact with Ukraine still stands", "signed"),
        # a subject denied
        ("No US ground troops would deploy to Ukraine, Trump says", "discussion"),
        ("Not a single British soldier will be sent", "discussion"),
        ("Britain would deploy troops after a peace deal", "proposal"),
        ("There is no doubt Britain will send troops", "proposal"),
        ("Britain no longer ready to send troops", "discussion"),
        ("Italy no longer willing to offer guarantees", "discussion"),
        # a headline's subject that lists its parties; a legislature's approval
        ("British, French troops to deploy to Ukraine after ceasefire, leaders say", "proposal"),
        ("U.S. Senate approves security guarantees for Ukraine", "signed"),
        ("Parliament approves sending troops to the mission", "proposal"),
        # offers and pledges
        ("Trump offered Ukraine security guarantees for 15 years", "proposal"),
        ("Meloni has proposed a security guarantee plan for Ukraine", "proposal"),
        ("Sunak pledges Ukraine funding and a security guarantee", "proposal"),
        ("Allies say Ukraine's membership trajectory is 'irreversible'", "proposal"),
        ("Ukraine won't get NATO invite this year", "discussion"),
        ("Putin agreed to allow Ukraine's allies to offer it a guarantee", "discussion"),
        ("US teases security pledge", "discussion"),
        # committing as what must wait or is left out; a commitment made before some event is still made
        ("Europeans want a US backstop before committing troops to Ukraine", "discussion"),
        ("Rome supports the mission without committing soldiers", "discussion"),
        ("Canada commits 200 troops before the summit", "proposal"),
        # talk, not action
        ("Leaders discuss security guarantees for Kyiv", "discussion"),
        ("Signs of progress in talks on security guarantees", "discussion"),
        # an awaited or unrelated deal is no signing of the guarantee
        ("Guarantees would apply after a peace deal is reached", "discussion"),
        ("Guarantees will be discussed once Russia and Ukraine sign a peace deal", "discussion"),
        # Italian
        ("L'Italia e l'Ucraina hanno firmato l'accordo di sicurezza", "signed"),
        ("Meloni firmerà l'accordo a Kiev", "proposal"),
        ("Il governo non ha firmato l'accordo", "discussion"),
        # French
        ("La France et l'Ukraine ont signé un accord de sécurité", "signed"),
        ("Macron va signer un accord de sécurité avec Kiev", "proposal"),
        ("Paris n'a pas signé l'accord", "discussion"),
        # German
        ("Deutschland und die Ukraine haben ein Sicherheitsabkommen unterzeichnet", "signed"),
        ("Scholz will am Freitag ein Sicherheitsabkommen unterzeichnen", "proposal"),
        ("Berlin hat das Abkommen noch nicht unterzeichnet", "discussion"),
        # Ukrainian
        ("Україна та Данія підписали безпекову угоду", "signed"),
        ("Зеленський підпише угоду про безпеку з Японією", "proposal"),
        ("Угоду ще не підписали", "discussion"),
    ],
)
def test_read_cue_levels(text: str, level: str) -> None:
    assert cue(text) == level


@pytest.mark.parametrize(
    ("text", "withdrawn"),
    [
        ("The United States withdrew from the agreement", True),
        ("Talks on the security pact collapsed", True),
        ("Britain scrapped the treaty", True),
        ("Berlin hat das Abkommen gekündigt", True),
        ("Britain drops plan to send troops to Ukraine", True),
        ("France backtracks on sending troops", True),
        ("The US walked back its offer of guarantees", True),
        ("Ukraine drops NATO demand in revised plan", False),  # a bid given up is news of it, not its withdrawal
        ("Kyiv would drop the plan if Moscow agrees", False),
        ("Russia demands that Ukraine abandon its bid if talks are to begin", False),
        ("Ukraine signed the security agreement", False),
    ],
)
def test_read_cue_withdrawal(text: str, withdrawn: bool) -> None:
    assert read_cue(fold_text(text)).withdrawn is withdrawn


def passages(*texts: str) -> list[Passage]:
    return [Passage(fold_text(t), t) for t in texts]


def test_decide_status_highest_wins_and_names_its_sentence() -> None:
    decision = read_status(passages("Leaders discuss the pact", "Kyiv and Tokyo signed the pact"))
    assert (decision.status, decision.sentence) == ("signed", "Kyiv and Tokyo signed the pact")


def test_decide_status_reports_withdrawal_from_any_passage() -> None:
    assert read_status(passages("The pact was signed in 2024", "Washington withdrew from the pact")).withdrawn


def test_a_question_asks_and_so_reports_no_offer_or_signing() -> None:
    assert read_status(passages("Who would command a European force in Ukraine?")).status == "discussion"
    assert read_status(passages("Will Zelensky sign the pact?")).status == "discussion"
    assert read_status(passages("Will Britain send troops? 'Yes', says Starmer")).status == "proposal"
    assert read_status(passages("Britain will send troops")).status == "proposal"


def test_decide_status_on_a_shorter_ladder_falls_back_to_a_lower_rung() -> None:
    ladder = ["discussion", "signed"]
    assert read_status(passages("Trump offered guarantees"), ladder).status == "discussion"
    assert read_status(passages("They signed the pact"), ladder).status == "signed"


def test_ladder_status_uses_first_rung_when_no_cue_name_is_on_the_ladder() -> None:
    assert ladder_status("proposal", ["rumour", "confirmed"]) == "rumour"


def test_decide_status_without_passages_is_the_first_rung() -> None:
    assert read_status([], ["talk", "done"]).status == "talk"
