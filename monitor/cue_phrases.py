"""The phrasings the status cues look for, as compiled patterns: `monitor.cues` applies them in order.

English, Italian, French, German and Ukrainian (some Russian), on text folded as `monitor.match` folds it (lower
case, no accents, plain quotes, hyphens between words as spaces). A rule for a kind of phrasing carries an
example in its comment. Pure data: nothing here reads or writes anything.
"""

from __future__ import annotations

import re

from monitor.text import strip_marks


def _compile(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{strip_marks(p)})" for p in patterns))


_W = r"(?:\w+\s+)"  # one word and the space after it
_SIGN_VERB = r"(?:sign|ink|seal|finali[sz]e|formali[sz]e|conclude|strike|reach|clinch|ratify|ratifie)"
_SIGN_NOUN = r"(?:deal|pact|agreement|accord|treaty|commitments|partnership|declaration)"

NEGATED_SIGNING = _compile(
    r"\b(?:has|have|had|did|does|do|is|are|was|were)\s+(?:not|never)\s+(?:yet\s+)?(?:been\s+)?"
    r"(?:sign|ink|seal|finali[sz]|conclud)\w*",
    r"\b(?:not|never)\s+(?:yet\s+)?(?:sign|ink|seal|finali[sz]|conclud|ratif)\w*",
    r"\b(?:hasn't|haven't|hadn't|didn't|doesn't|don't|won't|wouldn't|can't|cannot|couldn't|isn't|aren't|wasn't)"
    r"\s+(?:yet\s+)?(?:been\s+|be\s+)?(?:sign|ink|seal|finali[sz]|conclud|strike|struck|reach)\w*",
    r"\b(?:refus|declin|reject|fail)\w*\s+to\s+(?:sign|ink|seal|finali[sz]e|conclude|strike|reach)\w*",
    r"\byet\s+to\s+(?:be\s+)?(?:sign|finali[sz]|conclud)\w*",
    # wanting a pact signed or ratified is not having it ("Kyiv needs the guarantees ratified by Congress")
    r"\b(?:need|needs|needed|want|wants|wanted|seek\w*|demand\w*|ask\w*|urg\w*|press\w*)\s+(?:\S+\s+){1,4}?"
    r"(?:signed|ratified|sealed|concluded|finali[sz]ed)\b",
    r"\bno\s+(?:security\s+)?(?:deal|agreement|pact)\b",
    # guarantees of the kind a legislature ratifies, offered ("US to offer Senate-ratified guarantees")
    r"\b(?:senate|congress|parliament|legislature)\s+(?:ratified|approved)\s+(?:security\s+)?"
    r"(?:guarantees|assurances|commitments)\b",
    # a peace deal or ceasefire is not one of the tracked guarantees, and one that is only awaited is not signed
    r"\b(?:after|once|when|if|until|unless|before)\s+(?:\w+\s+){0,4}?(?:" + _SIGN_NOUN + r"|peace|ceasefire|truce)\s+"
    r"(?:is|are|has been|gets)\s+"
    r"(?:\w+ly\s+)?(?:signed|reached|concluded|agreed|finali[sz]ed)\b",
    r"\b(?:sign\w*|reach\w*|struck|strikes?|conclud\w*|agree\w*|seal\w*|ink\w*|secur\w*|get|gets|got|win|wins|won)\s+"
    r"(?:\w+\s+){0,3}?"
    r"(?:peace|ceasefire|cease fire|truce)\s+" + _SIGN_NOUN,
    r"\b(?:peace|ceasefire|cease fire|truce)\s+" + _SIGN_NOUN + r"\s+(?:\w+\s+){0,4}?"
    r"(?:signed|reached|concluded|agreed|finali[sz]ed|sealed|struck)\b",
    r"\bnon\s+(?:ha|hanno|abbia|e|sono)\s+(?:ancora\s+)?(?:firmat|siglat|sottoscritt)\w*",
    r"\b(?:rifiut|neg)\w*\s+(?:di\s+)?firmar\w*",
    r"\bn'?\s?(?:a|ont|avait)\s+pas\s+(?:encore\s+)?(?:signe|conclu)\w*",
    r"\brefus\w*\s+de\s+signer",
    r"\b(?:noch\s+)?nicht\s+(?:unterzeichne|unterschrieb|unterschreib)\w*",
    r"\b(?:unterzeichnet|unterschrieben)\s+(?:noch\s+)?nicht\b",
    r"\bне\s+(?:підпис|подпис)\w*",
    r"\b(?:відмов|отказ)\w*\s+(?:\w+\s+)?(?:підпис|подпис)\w*",
)
MODAL_SIGNING = _compile(
    # not where what is finalised is a plan or talks ("chiefs meet to finalise force plans")
    r"\b(?:will|would|shall|to|could|may|might|must|should|can|'ll|going to)\s+(?:\w+ly\s+)?(?:be\s+)?"
    rf"{_SIGN_VERB}(?:ed|d)?\b(?!\s+(?:\w+\s+){{0,2}}?(?:plans?|details|preparations|arrangements|talks|"
    r"discussions|consultations)\b)",
    r"\b(?:before|ahead of|prior to|preparing for|await\w*|expect\w*|plan\w* for|set for)\s+(?:the\s+)?signing\b",
    r"\bsigning\s+(?:ceremony\s+)?(?:is\s+)?(?:scheduled|planned|expected)\b",
    r"\b(?:firmera|firmeranno|firmerebbe|siglera|sottoscrivera)\w*",
    r"\b(?:per|di|a)\s+firmare\b",
    r"\bsara\s+(?:firmat|siglat)\w*",
    r"\bsigner(?:a|ont|ait|aient)\b",
    r"\b(?:va|vont|doit|doivent|devrait|devraient|pourrait|compte|veut|veulent|pour|de|a)\s+signer\b",
    r"\bsera\s+signe\w*",
    r"\b(?:wird|werden|will|wollen|soll|sollen|bereit|plant|planen|mochte)\s+" + _W + r"{0,6}?"
    r"(?:unterzeichnen|unterschreiben|unterzeichnet werden)\b",
    r"\bzu\s+(?:unterzeichnen|unterschreiben)\b",
    r"\b(?:підпише|підпишуть|підпишемо|подпишет|подпишут)\w*",
    r"\b(?:готов|план|має|мають|збира|намір|можуть|може|хоче|готовы|планиру)\w*\s+(?:\w+\s+)?"
    r"(?:підписати|подписать)\b",
    r"\bбуде\s+підписан\w*",
)
SIGNING = _compile(
    r"(?<!\ba )(?<!\bthe )(?<!\bno )(?<!\bany )(?<!\bclear )\bsigns?\b(?!\s+(?:of|that|up|off|in|at|are|were)\b)",
    r"\b(?:signed|inks|inked|sealed|ratifie[sd])\b",
    rf"\bsigning\s+of\s+(?:the|a|an|this|their)\s+(?:\S+\s+){{0,3}}?{_SIGN_NOUN}\b",
    r"\b(?:ink|seal|seals)\b(?!\s+of\b)",
    rf"\b(?:struck|strikes?|clinch\w*|reach(?:es|ed)|seal(?:s|ed)?)\s+(?:\w+\s+){{0,3}}?{_SIGN_NOUN}",
    rf"\b(?:concluded|finali[sz]ed|adopt(?:s|ed)|formali[sz](?:e|es|ed))\s+(?:\w+\s+){{0,4}}?{_SIGN_NOUN}",
    r"\bput(?:s|ting)?\s+pen\s+to\s+paper\b",
    # a pact in force, honoured or implemented has been signed ("security agreement in force since February")
    r"\b(?:remains?|remained|is|are|was|were|been|already|now|entered|enters|came|comes)\s+(?:\w+\s+)?in(?:to)?\s+"
    r"force\b",
    r"\bin\s+force\s+since\b",
    rf"\b(?:honou?rs?|honou?red|implement(?:s|ed|ing)|fulfil\w*|abides?\s+by)\s+(?:\w+\s+){{0,4}}?{_SIGN_NOUN}",
    # a legislature's approval adopts it ("US Senate approves security guarantees for Ukraine")
    r"\b(?:senate|congress|parliament|rada|bundestag|lawmakers|mps|legislators)\s+(?:\w+\s+)?approv(?:es|ed)\s+"
    rf"(?:\w+\s+){{0,3}}?(?:guarantees|{_SIGN_NOUN})\b",
    # a pact looked back on ("Britain's security agreement with Ukraine, one year on")
    rf"\b{_SIGN_NOUN}\b(?:\W+\w+){{0,6}}?\W+(?:a|one|two|three|four|five)\s+years?\s+on\b",
    r"\b(?:a|one|two|three|four|five)\s+years?\s+on\W+(?:(?!talks\b|negotiat|plans?\b|push\b)\w+\W+){0,4}?"
    r"(?:agreement|pact|accord|treaty|partnership)\b",
    # a pact renewed was signed, and is again ("Canada and Ukraine renew security agreement")
    rf"(?<!\bto )(?<!\bwill )(?<!\bwould )\brenew(?:s|ed)?\s+(?:\w+\s+){{0,3}}?{_SIGN_NOUN}\b",
    rf"\b{_SIGN_NOUN}\s+(?:\w+\s+){{0,6}}?(?:was|were|has been|have been|had been|is|are)\s+"
    r"(?:\w+ly\s+)?(?:concluded|finali[sz]ed|adopted|agreed)\b",
    rf"\b{_SIGN_NOUN}\s+(?:is\s+|was\s+)?reached\b",
    # a pact with an anniversary, or a party's pact named by its past year, has been signed ("mark two years of
    # the security accord", "Canada's 2024 security agreement")
    rf"\b{_SIGN_NOUN}\b(?:\W+\w+){{0,4}}?\W+(?:marks?|celebrates?|turns?)\s+(?:its\s+)?(?:\w+\s+)?(?:anniversary|years?\b)",
    rf"\b(?:anniversary|years?|months?)\s+(?:of|since)\s+(?:the\s+|its\s+|their\s+)?"
    rf"(?:(?!talks|negotiat|work|efforts?|push|plans?)\w+\s+){{0,3}}?(?:signing|{_SIGN_NOUN})\b",
    rf"(?:'s|\bits|\btheir|\bour|\bhis|\bher)\s+(?:19|20)\d\d\s+(?:\w+\s+){{0,2}}?{_SIGN_NOUN}\b",
    rf"\b{_SIGN_NOUN}\b(?:\W+\w+){{0,6}}?\W+(?:still stands|stands|remains valid|remain valid)\b",
    # what is done under a pact is done under one in force ("pledges $4.5 billion under new security accord"),
    # not under a peace deal or one still proposed
    rf"\bunder\s+(?:the\s+|a\s+|an\s+|its\s+|their\s+)?(?:new\s+)?"
    rf"(?:(?!proposed|planned|draft|future|possible|potential|any|prospective|peace|ceasefire|cease|truce)\w+\s+){{0,2}}?"
    rf"{_SIGN_NOUN}\b(?!\s+(?:being|still|yet|that would|to be|under discussion|under negotiation))",
    # ... not the purpose of a commitment ("UK to put boots on the ground to secure Ukraine deal")
    rf"(?<!\bto )(?<!\bhelp )(?<!\bwould )(?<!\bcould )(?<!\bwill )(?<!\bmust )"
    rf"\b(?:gets?|got|secures?|secured|wins?|won)\s+(?:\S+\s+){{0,6}}?(?:security\s+)?{_SIGN_NOUN}\b",
    rf"\b(?:conclude[sd]?|finali[sz]e[sd]?)\s+(?:\w+\s+){{0,4}}?{_SIGN_NOUN}",
    # hailing or welcoming a new pact celebrates one concluded ("Biden hailed a new security agreement"), not
    # the talks, progress or prospects of one
    rf"\b(?:hail(?:s|ed)|welcom(?:es|ed)|celebrat(?:es|ed))\s+(?:the\s+|a\s+|an\s+|its\s+|their\s+)?"
    rf"(?:(?!progress|talks|toward|towards|prospect|plan|idea|offer|draft|proposal|push|move)\w+\s+){{0,3}}?"
    rf"{_SIGN_NOUN}\b(?!\s+(?:talks|negotiations|plan|proposal|draft|offer))",
    # parties that agree a pact have concluded it ("EU and Ukraine agree security commitments"); not "agree to"
    rf"(?<!\bto )(?<!will )(?<!would )(?<!could )(?<!should )(?<!must )(?<!may )(?<!might )(?<!can )(?<!n't )(?<!not )"
    rf"\bagree[sd]?\s+(?:on\s+)?(?:(?!to\b|not\b|that\b)\w+\s+){{0,3}}?{_SIGN_NOUN}\b",
    r"\b(?:firmat[oaie]|firmano|firma|hanno firmato|siglat[oaie]|siglano|sottoscritt[oaie]|stipulat[oaie])\b",
    r"\bentrat[oa] in vigore\b",
    r"\b(?:signe|signent|signee|signees|signes|paraphe\w*|scelle\w*)\b",
    r"\bentre\w* en vigueur\b",
    r"\b(?:unterzeichnet\w*|unterzeichnen|unterzeichne|unterschrieben|unterschreiben|besiegelt|besiegeln|"
    r"abgeschlossen)\b",
    # concluding a pact, in French, Italian and German ("concluent un accord", "concludono l'accordo")
    r"\b(?:conclu(?:ent|t|ant|e|es)?|concludono|conclude|concluso|conclusa|schlie(?:ss|ß)en|schlie(?:ss|ß)t)\s+"
    r"(?:(?!que\b|qu'|che\b|dass\b)[\w']+\s+){0,3}?(?:un\s+|l'|le\s+|les\s+|i\s+|il\s+|ein\s+|das\s+)?"
    r"(?:accords?|pacte|traite|partenariat|accordo|accordi|patto|trattato|abkommen|vereinbarung|pakt|"
    r"sicherheitsabkommen)\b",
    r"\bin kraft getreten\b",
    r"\b(?:підписа(?:в|ла|ли|но|ні)|підписують|уклал\w*|укладено|подписа(?:л|ла|ли|но)|подписывают)\w*",
    r"\bнабу\w*\s+чинност\w*",
)
# one who became the latest (first, tenth ...) to sign has signed, though the words are "to sign"
SIGNATORY = _compile(
    r"\b(?:becomes?|became|is|was)\s+(?:the\s+)?(?:latest|first|second|third|fourth|fifth|newest|last|\d+(?:st|nd|rd|th))"
    r"\s+(?:\w+\s+){0,2}?to\s+(?:sign|ink|seal|conclude)\b",
)
_COMMIT_VERB = (
    r"(?:send|deploy|provide|offer|put|contribute|lead(?!\s+to\b)|guarantee|give|station|back|extend|spend|protect|defend|"
    r"take part|participate|run|monitor|establish|set up|command|police|enforce|patrol|guard)"
)
_FUTURE_GIVE = (
    r"(?:dara|daranno|offrira|offriranno|garantira|garantiranno|inviera|invieranno|mandera|manderanno|fornira|"
    r"forniranno|"
    r"donnera|donneront|enverra|enverront|fournira|fourniront|garantira|garantiront|"
    r"відправлять|відправить|направлять|направить|надішлють|розмістять|розмістить|нададуть|надасть)"
)
# after "no" or "not", the words that deny nothing ("no doubt Britain will send troops")
_NOT_DENYING = r"(?!(?:doubt|question|matter|sooner)\b)"
# what follows a verb of including or endorsing when what it includes is a denial ("includes a ban on joining"),
# or a phrase already blanked out as one (a run of spaces: "endorses a plan that bars membership")
_DENIAL = (
    r"(?:\W+\w+){0,8}?(?:\W+(?:no|not|a ban|ban|bans|banning|bar|bars|barring|neutral\w*|exclu\w*|renounc\w*|"
    r"renunciation|out of|without|limits?|caps?)\b|\s{3})"
)
NOT_OFFERING = _compile(
    r"(?:\bnot|n't|\bnever|\bno longer|\brefus\w* to|\breject\w*)\s+(?:\w+\s+){0,3}?"
    r"(?:offer|propos|pledg|promis|invit|commit|get|receive)\w*",
    r"(?<!ready )(?<!willing )(?<!prepared )(?<!agreed )(?<!agrees )(?<!agree )(?<!set )(?<!due )(?<!poised )"
    r"(?<!expected )"
    r"\b(?:to|could|might|may|would|should|can)\s+(?:\w+\s+)?"
    r"(?:offer|propose|pledge|promise|invite|commit)\b",
    # a commitment that is refused, doubted or only a condition is no commitment
    r"\b(?:not|n't|never|no|refus\w*|declin\w*|reject\w*|rul\w* out|unwilling|against|unlikely)\s+"
    rf"{_NOT_DENYING}(?:\w+\s+){{0,3}}?"
    rf"(?:(?:ready|willing|prepared)(?:\s+and\s+\w+)?(?:\s+to\s+\w+)?|to {_COMMIT_VERB}|{_COMMIT_VERB}\w*)\b",
    r"\b(?:not|n't|never|no|refus\w*|reject\w*|unwilling|unlikely)\s+(?:\w+\s+){0,3}?agree\w*\s+to\b(?:\W+\w+){0,5}",
    r"\b(?:if|unless|whether|provided|once)\s+(?:\w+\s+){0,5}?"
    r"(?:offer|propos|pledg|promis|provid|send|deploy|commit|give|agree|station|put|contribut|back|guarantee|extend|"
    r"help|lead)\w*",
    # committing named as what must wait, or what is left out ("a backstop before committing troops", "help
    # without sending troops"); a commitment made before some other event keeps its verb ("pledges ... before
    # the summit")
    r"\b(?:before|until|without)\s+(?:offer|propos|pledg|promis|provid|send|deploy|commit|giv|station|contribut|"
    r"guarantee|extend|lead|put)\w*ing\b(?:\s+(?:[\w,]+\s+){0,2}?(?:troops|soldiers|forces|guarantees|boots))?",
    # a question still open ("weighing whether to station troops", "how to guarantee a ceasefire")
    r"\b(?:whether|how|when|where|what)\s+to\s+\w+",
    # ... or what someone will or would do ("clarity on what Washington will contribute", "unclear whether the US
    # would provide air cover")
    r"\b(?:whether|how much|how many|what)\s+(?:\w+\s+){1,3}?(?:will|would|could|can|might)\s+\w+",
    # ... and how someone plans to do it, explained ("how Europe plans to protect Ukraine")
    r"\bhow\s+(?:\w+\s+){1,3}?(?:will|would|could|can|might|plans?|intends?|aims?|hopes?|wants?)\s+(?:to\s+)?\w+",
    r"\b(?:could|might|may)\s+(?:\w+\s+)?(?:send|deploy|provide|give|contribute)\b",
    # pledges, offers and promises as nouns ("security pledges"), not as verbs ("the UK pledges")
    r"\b(?:security|the|its|their|his|her|our|new|any|these|those|of|such|make|binding|western|allied|unbreakable|"
    r"only|empty|vague|hollow|mere)"
    r"\s+(?:pledges|offers|proposals|promises)\b",
    r"\bstops?\s+short\s+of\s+(?:\w+\s+){0,3}",
    # an invitation promised for when conditions are met is no invitation yet
    r"\b(?:will|would|could|can)\s+be\s+invited\b(?:\W+\w+){0,6}?\W+(?:when|once|if|after)\b",
    # a plan or offer dropped, shelved or walked back is no longer made ("Britain drops plan to send troops")
    r"\b(?:drop(?:s|ped|ping)?|shelv\w*|scrap\w*|abandon\w*|ditch\w*|backtrack\w*(?:\s+on)?|walk\w*\s+back|"
    r"u turn\w*(?:\s+on)?)\s+(?:\S+\s+){0,3}?(?:plans?|offers?|idea|pledges?|proposals?|commitments?)\b"
    r"(?:\s+(?:to|of|for)\s+\w+)?",
    # a commitment doubted, feared or hoped for is not made ("diplomats doubt Washington will back the force",
    # "Zelensky hopes Congress will back the guarantees")
    r"(?<!\bno )(?<!\bwithout )\b(?:doubt\w*|fear\w*|hope|hopes|hoped|hoping|unsure|uncertain|unclear|sceptic\w*|"
    r"skeptic\w*|question\w*)\s+"
    r"(?:whether\s+|if\s+|that\s+)?"
    r"(?:\w+\s+){0,3}?(?:will|would|could|can|might)\s+(?:\w+\s+)?\w+",
    r"\b(?:dout\w*\s+(?:que|qu'|de)|dubit\w*\s+che|teme\w*\s+che|craign\w*\s+que|bezweifel\w*|zweifel\w*\s+(?:\w+\s+)?(?:dass|ob)|"
    r"сумнів\w*|сомнева\w*)(?:\W+\w+){0,6}",
    # a plan or text that bars or renounces something proposes none of it ("draft plan bars NATO troops")
    r"\b(?:draft\w*\s+)?(?:\w+\s+){0,2}?(?:plan|proposal|document|framework|text|deal|agreement)\s+(?:would\s+|will\s+)?"
    r"(?:\S+\s+){0,2}?(?:bar|bars|barring|ban|bans|banning|exclud\w*|rul\w* out|prohibit\w*|forbid\w*|renunciation|"
    r"renounc\w*)\b",
    # a text that drops its mention of a commitment ("communique drops mention of the irreversible path")
    r"\b(?:drop\w*|omit\w*|remov\w*|delet\w*|strip\w*|scrap\w*)\s+(?:\w+\s+){0,2}?(?:mention|mentions|reference|references|"
    r"language|wording|pledge|promise)\s+(?:of|to|on|about)\b(?:\W+\w+){0,6}",
    # what someone would give, named in a relative clause, is not given ("clarity on the guarantees Washington
    # would provide", "what protection the US could give")
    r"\b(?:guarantees?|security|protection|support|troops|soldiers|forces|backstop|assurances|commitments?|help|role)\s+"
    r"(?!(?:from|of|in|to|for|on|with|under|at|by)\b)(?:that\s+|which\s+)?(?:\w+\s+){1,3}?(?:would|could|might)\s+"
    r"(?:\w+\s+)?(?:provide|offer|give|send|deploy|extend|contribute)\b",
    # floating the idea of giving something up ("US floats idea of Ukraine dropping NATO aspirations")
    r"\b(?:float\w*|propos\w*|offer\w*|suggest\w*|push\w*|rais\w*)\s+(?:\w+\s+){0,4}?(?:dropping|giving up|abandoning|"
    r"renouncing|forgoing|shelving|freezing)\b",
    # offering to give something up ("offers to drop the NATO bid") offers nothing that is tracked
    r"\b(?:offer\w*|propos\w*|pledg\w*|promis\w*|ready|willing|prepared|agree\w*)\s+to\s+"
    r"(?:drop|give up|abandon|renounce|forgo|shelve|freeze|withdraw)\b",
    # a subject denied ("no US ground troops would deploy", "not a single soldier will be sent")
    rf"\b(?:no|not a single|not one|neither)\s+{_NOT_DENYING}(?:\w+\s+){{0,4}}?"
    r"(?:will|would|shall|could|is|are|to)\s+(?:\w+\s+)?"
    rf"(?:be\s+)?(?:{_COMMIT_VERB}|sent|deployed|stationed|going)\w*",
    # vowing never to do it proposes nothing ("Fico vows Slovakia will never agree to Ukraine joining NATO")
    r"\bvow\w*\s+(?:\w+\s+){0,3}?(?:never|not)\b(?:\W+\w+){0,4}",
    # vowing or offering to block something proposes nothing ("Fico vows to block Ukraine's entry into NATO")
    r"\b(?:vow\w*|pledg\w*|promis\w*|threaten\w*|offer\w*)\s+to\s+(?:block|veto|oppose|stop|prevent|reject|bar|halt|"
    r"obstruct|scupper|torpedo)\b",
    # an offer that few or none have made ("few countries have pledged soldiers")
    r"\b(?:few|hardly any|none of the|no other|not many)\s+(?:\w+\s+){0,2}?(?:have\s+|has\s+)?(?:yet\s+)?"
    r"(?:offer|propos|pledg|promis|commit)\w*",
    # joining that is refused, doubted or only possible ("Turkey may join the force", "Poland won't join")
    r"(?:\b(?:not|never|refus\w*|declin\w*|reject\w*|could|might|may|would|whether|if)|n't)\s+(?:\w+\s+){0,2}?join\w*",
    # "invited" as an adjective ("the 35 invited delegations") names guests, not an invitation; "any guarantees
    # offered" supposes an offer
    r"\b(?:the|all|other|some|many|\d+)\s+invited\b",
    r"\b(?:any|whatever|possible|potential|future)\s+(?:\S+\s+){0,4}?(?:offered|proposed|promised|pledged)\b",
    # refusing to commit, in the other languages ("refuse de s'engager", "rifiuta di inviare")
    r"\b(?:refus\w*|rifiut\w*)\s+(?:de|d'|di)\s*(?:s'|si\s+)?(?:engager|impegnar\w*|promettre|promettere|proposer|"
    r"proporre|offrir|offrire|donner|dare|envoyer|inviare|garantir|garantire|fournir|fornire)\w*",
    # the future of giving, negated ("l'Italia non inviera soldati", "la France n'enverra pas", "не направить")
    rf"\b(?:non|ne|nicht|не|ні|n')\s*(?:\w+\s+)?{_FUTURE_GIVE}\b",
    # not ready or willing, in the other languages
    r"\b(?:non|pas|nicht|nie|не|ні)\s+(?:\w+\s+){0,2}?(?:pront[aoie]|prets?|pretes?|disponibil\w*|bereit|готов\w*)"
    r"(?:\W+\w+){0,4}",
    # wanting, urging or being unable to commit is not committing
    r"\b(?:wants?|wanted|wish\w*|hop\w*|seek\w*|ask\w*|urg\w*|call\w* on|call\w* for|push\w* for|press\w*|too \w+)\s+"
    rf"(?:\w+\s+){{0,2}}?to\s+{_COMMIT_VERB}\b",
    # denying a plan or report of committing commits nothing ("Tusk denies plans to send troops", "dismisses
    # reports Poland will send troops", "denies it will send")
    r"\b(?:den(?:y|ies|ied|ying)|dismiss(?:es|ed|ing)?)\s+(?:\w+\s+){0,5}?(?:to\s+|will\s+|would\s+)"
    rf"(?:\w+\s+)?{_COMMIT_VERB}\w*",
    # ... or considering it ("open to considering contributing", "Czech Republic weighs sending soldiers")
    r"\b(?:consider\w*|weigh\w*|mull\w*|stud(?:y|ies|ying|ied)|explor\w*)\s+(?:\w+\s+)?(?:contribut|send|deploy|commit|"
    r"station|provid)\w*",
    # ... as is being wary or reluctant to ("some countries are wary of committing forces")
    r"\b(?:wary|cautious|reluctant|hesitant|loath|loth|sceptical|skeptical|nervous)\s+(?:of|about|over|to|at)\s+"
    r"(?:\w+\s+){0,2}?(?:commit|send|deploy|offer|pledg|contribut|station|put|provid|giv)\w*",
)
OFFERING = _compile(
    # a plural subject's present ("the US and Europe offer Ukraine ...", "allies pledge to ...")
    r"(?<!\ban )(?<!\bany )(?<!\bno )(?<!\ba )\b(?:offer|pledge|propose|promise|vow)\s+"
    r"(?:ukraine|ukraine's|kyiv|kyiv's|kiev|kiev's|to|them|it|"
    r"(?:\S+\s+){0,3}?(?:security|guarantees|troops|protection|membership))\b",
    # settling a text or a plan ("allies agree command structure"), not meeting to ("meet to finalise plans")
    r"(?<!\bto )\b(?:finali[sz]e[sd]?|agree[sd]?(?:\s+on)?|draft(?:s|ed)?)\s+(?:(?!that\b)\w+\s+){0,4}?"
    r"(?:document|framework|text|plans?)\b",
    r"(?<!\bto )\bagree[sd]?\s+(?:\w+\s+){0,3}?(?:command|structure|mandate|composition|rules of engagement|"
    r"package|roadmap)\b",
    r"\b(?:offer(?:ed|s)|propos(?:ed|es)|pledg(?:ed|es)|promis(?:ed|es)|put(?:s|ting)?\s+forward|tabl(?:ed|es|ing)|"
    r"unveil(?:ed|s)|invit(?:ed|es)|promot(?:ed|es|ing)|commit(?:ted|s)?\s+to|vow(?:ed|s)|pitch(?:ed|es)|float(?:ed|s))\b",
    r"\b(?:path|trajectory)\b(?:\W+\w+){0,10}?\W+(?:is\s+|as\s+)?'?irreversible",
    r"\birreversible\s+(?:path|trajectory)\b",
    r"\b(?:chemin|percorso|cammino|weg)\b(?:\W+\w+){0,10}?\W+(?:irreversible|irreversibile|unumkehrbar)",
    r"\b(?:irreversible|irreversibile|unumkehrbar\w*)\W+(?:\w+\W+){0,2}?(?:chemin|percorso|cammino|weg)\b",
    rf"\bdraft(?:ed)?\s+(?:\w+\s+){{0,2}}{_SIGN_NOUN}",
    r"\b(?:propost[oaie]|propone|propongono|proponendo|offert[oaie]|offre|offrono|promess[oaie]|promette|promettono|"
    r"impegnat[oaie]|invitat[oaie]|"
    r"rilanci(?:a|ano))\b",
    r"\b(?:propose|proposent|offrent|promis|promet|promettent|s'engage\w*)\b",
    # an Italian or French headline's speaker followed by an infinitive puts it forward ("Meloni: estendere ...";
    # the speaker's colon is gone from a focused passage)
    r"^(?:(?!non\b|ne\b|pas\b|senza\b|sans\b)[\w']+(?: ?:)? ){1,5}?'?(?:estendere|offrire|garantire|inviare|"
    r"mandare|etendre|offrir|envoyer|garantir)\s(?![^.!?]*\?)",  # not asked ("inviare soldati? Non ora")
    r"\b(?:vorgeschlagen|angeboten|zugesagt|versprochen|verspricht|eingeladen)\b",
    r"\b(?:schlagt|schlagen|bietet|bieten|sagt|sagen)\s+(?:\w+\s+){0,5}?(?:vor|an|zu)\b",
    # ... the verb's prefix at the clause's end, however far ("USA bieten der Ukraine Garantien nach ... an")
    r"\b(?:(?:bietet|bieten)\s+(?:[\w'-]+\s+){0,14}?an|(?:schlagt|schlagen)\s+(?:[\w'-]+\s+){0,14}?vor|"
    r"(?:sagt|sagen)\s+(?:[\w'-]+\s+){0,14}?zu)(?=\s*(?:[.,;:!?]|$))",
    r"\b(?:запропонува|пропону|пообіця|обіця|запросил|запрошу|предлож|пообеща|зобов'яза|зобовяза)\w*",
    # agreeing to deploy, in Ukrainian and Russian ("26 країн погодилися розмістити війська")
    r"\b(?:погодил|погодж|согласил)\w*\s+(?:\w+\s+)?(?:розмісти|направи|відправи|надати|размест|отправи)\w*",
    # being ready, willing or agreed to commit; a headline's "X to send troops"; announcing or setting up
    r"\b(?:ready|willing|prepared|agree[sd]?|set|commit(?:s|ted)|decid(?:es|ed)|plan(?:s|ned)|aim(?:s|ed)?)\s+"
    rf"to\s+(?:\w+\s+){{0,2}}?{_COMMIT_VERB}\b",
    # ... or to join the force or mission ("Czech Republic ready to join Ukraine security mission")
    r"\b(?:ready|willing|prepared|agree[sd]?|decid(?:es|ed))\s+to\s+join\b(?!\s+(?:nato|the alliance|talks))",
    # a plan that includes it proposes it ("the revised plan includes guarantees mirroring Article 5"), as do allies
    # endorsing a plan; not where what it includes or endorses is a ban or a denial ("includes a ban on joining")
    r"\b(?:plan|proposal|draft|framework|offer|text|document)\s+(?:\w+\s+){0,2}?(?:includes?|included|contains?|"
    rf"provides?\s+for|envisag\w*|foresees?)\b(?!{_DENIAL})",
    rf"\bendors(?:e|es|ed)\b(?!{_DENIAL})",
    rf"\b(?:agree[sd]?|ready|willing|set|decid(?:es|ed))\s+to\s+include\b(?!{_DENIAL})",
    r"\bready\s+for\s+(?:ukraine|kyiv|kiev|deployment)\b",
    # a government or parliament approving a deployment ("Czech government approves sending troops")
    r"\b(?:approv(?:es|ed|ing)?|backs|backed)\s+(?:the\s+|a\s+)?(?:plans?\s+(?:to|for)\s+)?(?:send|sending|deploy\w*|dispatch\w*|"
    r"station\w*|participation|contribution)\b",
    # ... or joining it ("Canada, Australia join UK-led effort to secure Ukraine ceasefire")
    r"\bjoin(?:s|ed)?\s+(?:the\s+|a\s+|an\s+)?(?:\S+\s+){0,3}?(?:coalition|force|mission|effort)\b"
    r"(?!\W+(?:\w+\W+){0,4}?(?:talks|meetings?|summit|call|discussions|video))",
    rf"\b(?:will|'ll|shall|would)\s+(?:\w+\s+)?{_COMMIT_VERB}\b",
    # putting a plan forward, announced ("Meloni will pitch guarantees", "the EU is set to propose")
    r"\b(?:will|'ll|shall|(?:is|are)\s+(?:set|due|expected|poised)\s+to)\s+(?:\w+\s+)?(?:pitch|present|unveil|table|"
    rf"float|propose|put forward|lay out|submit)\b(?!{_DENIAL})",
    r"\b(?:will|'ll|shall)\s+be\s+(?:\w+\s+)?(?:involved|part of|taking part|participating|there)\b",
    # signing up to a coalition or mission is joining it, not signing a text
    r"\bsign(?:s|ed|ing)?\s+up\s+(?:to|for|with)\b",
    # a promise to help ("the US will help Europe with guarantees"); "would help" is only hypothetical
    r"\b(?:will|'ll|shall|ready to|willing to|prepared to|agree[sd]? to)\s+help\b",
    # agreeing to the commitment itself ("the US agreed to Article 5-like protection")
    r"\bagree[sd]?\s+to\s+(?!discuss|talk|consider|meet|study|examine|explore|look|negotiat|work|continue|keep)"
    r"(?:\w+\s+){0,4}?(?:guarantee|protection|backstop|security|troops|forces|membership|invit)",
    # being open to committing ("open to sending troops"); committing troops themselves ("commit 5,000 troops")
    r"\bopen'?\s+to\s+(?:\w+\s+)?(?:send|deploy|provid|contribut|station|commit|join|tak|participat|lead|offer|guarantee)"
    r"\w*ing\b",
    r"\bcommit(?:s|ted|ting)?\s+(?:[\w,]+\s+){0,3}?(?:troops|soldiers|forces|personnel|peacekeepers|boots|brigades?|"
    r"battalions?|units?|compan(?:y|ies)|contingents?|ships|frigates?|jets|aircraft)\b",
    # confirming a contribution or commitment ("coalition countries confirm troop contributions")
    r"(?<!\bto )\bconfirm(?:s|ed)?\s+(?:\w+\s+){0,3}?"
    r"(?:troops?|contributions?|participation|commitments?|pledges?|guarantees)\b",
    # a force that arrives, begins to deploy or becomes operational is committed
    r"\b(?:troops|soldiers|forces|contingents?|units?|peacekeepers)\s+(?:\w+\s+){0,2}?arriv(?:e|es|ed|ing)\s+in\b",
    r"\bbeg(?:in|ins|an|un)\s+(?:its\s+|their\s+|the\s+)?deploy\w*",
    r"\b(?:reach(?:es|ed)?|achiev(?:es|ed)?)\s+(?:\w+\s+){0,2}?operational\b",
    # initialling a text is a step short of signing it
    r"\binitial(?:l?ed|s)\s+(?:\w+\s+){0,4}?(?:text|agreement|deal|document|pact|guarantees|treaty)\b",
    # a headquarters or command that opens or starts work is set up
    r"\b(?:headquarters|hq|command(?: cent(?:er|re))?|base)\s+(?:\w+\s+)?(?:open(?:s|ed)|set up)\b",
    r"\bopen(?:s|ed)\s+(?:its\s+|a\s+|the\s+)?(?:\S+\s+){0,2}?(?:headquarters|hq|command cent(?:er|re))\b",
    # a headline's "X to send troops": its subject runs of words, none of them blanked out as a refusal
    rf"^(?:[\w'.]+,? ){{1,6}}?to {_COMMIT_VERB}\b",  # "British, French troops to deploy"
    r"^(?:[\w'.]+ ){1,6}?to (?:unveil|announce|propose|present|launch)\b",
    # ... and "X to agree a pact", where X is a headline's subject, not a clause ("the EU is ready to agree")
    r"^(?:(?!is |are |was |were |be |ready |willing |prepared )[\w'.]+ ){1,6}?to agree\b(?! to\b| on whether\b)",
    r"\b(?:announc(?:es|ed)|unveil(?:s|ed)|launch(?:es|ed)|earmark(?:s|ed)|allocat(?:es|ed)|establish(?:es|ed)|"
    r"sets?\s+up|takes?\s+command|took\s+command|begins?\s+(?:its\s+)?work|becomes?\s+operational)\b",
    r"\b(?:guarantees?|assurances|commitments|protocols|backstop|agreement|deal|pact|document|plan|package|framework)\b"
    r"(?:\W+\w+){0,6}?\W+"
    r"(?:is\s+|are\s+|now\s+)?(?:\d+\W*(?:%|percent)\W+)?ready\b",
    r"\b(?:annuncia\w*|annonce\w*|kundigt\w*|kuendigt\w*|оголоси\w*|объяви\w*)\b",
    r"\b(?:pront[aoie]|prets?|pretes?|bereit|готов\w*)\W+(?:a|ad|de|zu|до)?\s*(?:\w+\W+){0,2}?"
    r"(?:inviare|schierare|fornire|offrire|garantire|dare|envoyer|deployer|engager|fournir|offrir|garantir|donner|entsenden|"
    r"schicken|geben|leisten|garantieren|направ\w*|відправ\w*|надати|гарантувати|предостав\w*|розмістити|разместить)",
    # the future of giving, sending and guaranteeing ("daranno garanzie", "відправлять війська")
    rf"\b{_FUTURE_GIVE}\b",
)
WITHDRAWAL = _compile(
    r"\b(?:drop(?:s|ped)|shelv(?:es|ed)|ditch(?:es|ed)|backtrack(?:s|ed)\s+on|walk(?:s|ed)\s+back|u turns?\s+on)\s+"
    r"(?:\S+\s+){0,3}?(?:plans?|offers?|idea|pledges?|proposals?|commitments?|guarantees?|sending|deploying)\b",
    r"\b(?:withdr(?:ew|aws|awn|awing)|pull(?:ed|s|ing)\s+out)\s+(?:\w+\s+)?(?:from|of)\b",
    r"\b(?:collaps(?:ed|es|ing)|scrap(?:ped|s|ping)|tore up|torn up|terminated|revoked|abandon(?:ed|s))\b",
    r"\b(?:cancel+(?:ed|s)|suspended)\b\s+(?:the\s+)?(?:\w+\s+){0,3}?" + _SIGN_NOUN,
    r"\b(?:ritirat\w*|si ritira|annullat\w*|stracciat\w*|saltat[oa])\b",
    r"\b(?:s'est retire\w*|se retire\w*|annule\w*|abandonne\w*|rompu)\b",
    r"\b(?:zuruckgezogen|aufgekundigt|gekundigt|gescheitert|aufgegeben|ausgesetzt)\b",
    r"\b(?:вийшл\w*|вийшов|скасува\w*|розірва\w*|вышл\w*|вышел|расторг\w*)",
)
CONDITION = _compile(
    r"\b(?:if|unless|would|could|might|may|must|should|threaten\w*|demand\w*|call\w* on|urg\w*|se|si|wenn|falls|якщо)\b"
)


# a headline's "X to offer": its subject a name, not a clause that wants, refuses or is only ready to offer
HEADLINE_OFFER = re.compile(
    r"^(?:(?!is |are |was |were |be |to |allow\w* |lets? |not |never |wants? |hopes? |seeks? |asks? |urges? |"
    r"refuses? |declines? |fails? |unable |unwilling |reluctant |how |whether |what |any |"
    r"block\w* |veto\w* |oppos\w* |resist\w* |against |no |longer )[\w'.]+ ){1,6}?"
    r"to (?:offer|propose|pledge|promise|invite)\b"
)
QUESTION_END = re.compile(r"\?[\s\"'\u2019\u201d)]*$")
