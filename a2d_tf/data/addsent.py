"""AddSent-style adversarial variants of SQuAD-format records, by rules.

Jia and Liang (2017) built AddSent by appending to a passage one sentence
that looks like the question but does not answer it. This module follows
their recipe without a parser, NER tagger, word vectors or crowd workers:

1. Mutate the question so that a sentence built from it cannot answer the
   original question: names (capitalized spans that the passage shows to be
   proper nouns) become names from other articles of the same records
   (persons and places, where the records' answers tell their type, become
   names of the same type), numbers and years are shifted, months, weekdays,
   nationalities, ordinals and number words become others of their class,
   and words with an antonym in a small built-in list are flipped. A
   question where nothing can be changed is skipped and counted.
2. Make a fake answer of the gold answer's type (date, year, number,
   person, place, other name, phrase; decided from the question words and
   the answer's shape). Dates, years and numbers are the gold answer with
   its numbers shifted and its month, unit or magnitude changed ("17 nm" ->
   "9 μm"); a nationality, month or weekday becomes another one; otherwise
   (and when that fails) the fake answer is drawn from the answers of other
   articles' questions of the same type (phrases also by their first word:
   a verb, `to` + verb, a gerund, a prepositional or a noun phrase). It has
   SQuAD F1 0 against every gold answer and shares no content word with
   the mutated question. A question with no such answer is skipped and
   counted.
3. Turn the mutated question and the fake answer into a declarative
   sentence with templates for the common wh-forms (who, what / which + noun,
   when, where, why, how many / much, how + adjective, how, prepositions
   before the wh-word, wh-words at the end), with a fallback
   (`<question>: <fake answer>.`) for the rest.

The sentence is appended at the end of the passage (after one space), as
AddSent does, so the gold answers' offsets stay valid. A variant never
contains a gold answer's text (normalized as SQuAD does, as a run of
words); a question whose mutated form still contains it is skipped and
counted.

The output is a function of the records, `num_questions` and `seed` only:
every random choice comes from a `random.Random` seeded with a string, and
nothing depends on set order or on `hash()`. A question's variant does not
depend on which other questions were sampled.

This is an approximation of AddSent, not AddSent: the sentences are less
fluent than the parser-built, crowd-corrected originals; AddSent tried
several candidate sentences per question and kept the one the model did
worst on, while this set has one model-independent sentence per question
(as AddOneSent has). The true Adversarial SQuAD files should be used where
they are available.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import re
import types
from collections.abc import Iterable, Mapping, Sequence

from a2d_tf.data.records import DataError, Record
from a2d_tf.metrics import squad

ADVERSARIAL_SUFFIX = "-addsent"

# Reasons a sampled question gets no variant; every one is counted.
NO_GOLD_ANSWER = "no_gold_answer"
NO_SUBSTITUTION = "no_substitution"
NO_FAKE_ANSWER = "no_fake_answer"
GOLD_IN_SENTENCE = "gold_answer_in_sentence"
SKIP_REASONS = (
  NO_GOLD_ANSWER,
  NO_SUBSTITUTION,
  NO_FAKE_ANSWER,
  GOLD_IN_SENTENCE,
)

DATE = "date"
YEAR = "year"
NUMBER = "number"
PERSON = "person"
PLACE = "place"
NAME = "name"
PHRASE = "phrase"
ANSWER_TYPES = (DATE, YEAR, NUMBER, PERSON, PLACE, NAME, PHRASE)

# Random draws of a fake answer (or a substitute name) before giving up.
_MAX_DRAWS = 40
# Longest fake answer drawn from other questions, in words.
_MAX_FAKE_WORDS = 6

# ---------------------------------------------------------------------------
# Word lists.

_MONTHS = (
  "January February March April May June July August September October "
  "November December"
).split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_DEMONYMS = (
  "American British English French German Spanish Italian Portuguese Dutch "
  "Polish Russian Chinese Japanese Korean Indian Egyptian Greek Roman Arab "
  "Persian Turkish Mongol Mongolian Irish Scottish Welsh Swiss Swedish "
  "Norwegian Danish Austrian Hungarian Canadian Mexican Brazilian "
  "Australian African Asian European Soviet Israeli Iranian Iraqi Syrian "
  "Ottoman Byzantine Protestant Catholic Muslim Christian Jewish Hindu "
  "Buddhist"
).split()
_NUMBER_WORDS = (
  "two three four five six seven eight nine ten eleven twelve fifteen "
  "twenty thirty forty fifty"
).split()
_MAGNITUDES = "hundred thousand million billion trillion".split()
_ORDINALS = (
  "first second third fourth fifth sixth seventh eighth ninth tenth "
  "eleventh twelfth"
).split()
# Antonym pairs of adjectives, nouns and a few adverbs and prepositions
# whose flip turns a statement into another one. Words that are often verbs
# ("defeat", "increase", "supply", "open", "end") are left out: a flipped
# verb would be inflected as the noun it is not.
_ANTONYM_PAIRS = tuple(
  tuple(pair.split("/"))
  for pair in (
    "large/small largest/smallest larger/smaller big/little biggest/smallest "
    "high/low highest/lowest higher/lower long/short longest/shortest "
    "longer/shorter old/young oldest/youngest new/old newest/oldest "
    "early/late earliest/latest earlier/later first/last most/least more/less "
    "best/worst better/worse good/bad before/after north/south "
    "northern/southern east/west eastern/western northeast/southwest "
    "northwest/southeast upper/lower inner/outer top/bottom internal/external "
    "domestic/foreign public/private major/minor modern/ancient rich/poor "
    "wealthy/poor strong/weak strongest/weakest hot/cold warm/cool wet/dry "
    "light/dark fast/slow fastest/slowest heavy/light cheap/expensive "
    "common/rare primary/secondary positive/negative maximum/minimum "
    "male/female men/women man/woman boys/girls boy/girl king/queen "
    "kings/queens father/mother son/daughter sons/daughters brother/sister "
    "husband/wife winter/summer spring/autumn day/night war/peace "
    "offense/defense offensive/defensive senior/junior urban/rural "
    "legal/illegal official/unofficial natural/artificial imports/exports "
    "teacher/student teachers/students winner/loser liberal/conservative "
    "local/national international/domestic full/empty simple/complex "
    "easy/difficult possible/impossible successful/unsuccessful "
    "visible/invisible often/rarely usually/rarely always/never "
    "sometimes/never main/secondary different/similar growth/decline "
    "inequality/equality problem/solution problems/solutions success/failure "
    "advantage/disadvantage advantages/disadvantages adults/children "
    "adult/child past/future input/output true/false correct/incorrect "
    "necessary/unnecessary important/unimportant effective/ineffective "
    "efficient/inefficient stable/unstable useful/useless popular/unpopular "
    "independent/dependent active/inactive equal/unequal secular/religious "
    "physical/mental solid/liquid plants/animals inside/outside "
    "wealth/poverty employers/employees employer/employee buyers/sellers "
    "professional/amateur parents/children thin/thick wide/narrow "
    "deep/shallow cheaper/costlier safe/dangerous healthy/unhealthy "
    "friendly/hostile formal/informal simpler/harder majority/minority "
    "strength/weakness strengths/weaknesses above/below"
  ).split()
)


_ANTONYM_WORDS = frozenset(w for pair in _ANTONYM_PAIRS for w in pair)


def _antonym_table() -> dict[str, str]:
  table: dict[str, str] = {}
  for a, b in _ANTONYM_PAIRS:
    table.setdefault(a, b)
    table.setdefault(b, a)
  return table


_ANTONYMS = types.MappingProxyType(_antonym_table())


# Units of one dimension, swapped for each other in fake answers.
_UNITS = (
  "nm μm mm cm m km".split(),
  "inches feet yards miles".split(),
  "inch foot yard mile".split(),
  "metres meters kilometres kilometers centimetres centimeters".split(),
  "metre meter kilometre kilometer centimetre centimeter".split(),
  "mg g kg".split(),
  "grams kilograms tonnes tons pounds ounces".split(),
  "seconds minutes hours days weeks months years decades centuries".split(),
  "second minute hour day week month year decade century".split(),
  "°C °F K".split(),
  "dollars euros pounds francs".split(),
  "acres hectares".split(),
  "mph km/h".split(),
)
_UNIT_GROUP = {unit: group for group in _UNITS for unit in group}

# Irregular verbs: base -> (past, participle).
_IRREGULAR = {
  base: (past, participle)
  for base, past, participle in (
    verb.split("/")
    for verb in (
      "arise/arose/arisen be/was/been bear/bore/born beat/beat/beaten "
      "become/became/become begin/began/begun bind/bound/bound "
      "bite/bit/bitten blow/blew/blown break/broke/broken "
      "bring/brought/brought broadcast/broadcast/broadcast build/built/built "
      "buy/bought/bought catch/caught/caught choose/chose/chosen "
      "come/came/come cost/cost/cost cut/cut/cut deal/dealt/dealt dig/dug/dug "
      "do/did/done draw/drew/drawn drink/drank/drunk drive/drove/driven "
      "eat/ate/eaten fall/fell/fallen feed/fed/fed feel/felt/felt "
      "fight/fought/fought find/found/found flee/fled/fled fly/flew/flown "
      "forbid/forbade/forbidden forecast/forecast/forecast "
      "foresee/foresaw/foreseen forget/forgot/forgotten "
      "forgive/forgave/forgiven freeze/froze/frozen get/got/gotten "
      "give/gave/given go/went/gone grow/grew/grown hang/hung/hung "
      "have/had/had hear/heard/heard hide/hid/hidden hit/hit/hit "
      "hold/held/held hurt/hurt/hurt keep/kept/kept know/knew/known "
      "lay/laid/laid lead/led/led leave/left/left lend/lent/lent let/let/let "
      "lie/lay/lain light/lit/lit lose/lost/lost make/made/made "
      "mean/meant/meant meet/met/met mislead/misled/misled "
      "overcome/overcame/overcome override/overrode/overridden "
      "oversee/oversaw/overseen overthrow/overthrew/overthrown pay/paid/paid "
      "put/put/put quit/quit/quit read/read/read rebuild/rebuilt/rebuilt "
      "rewrite/rewrote/rewritten ride/rode/ridden ring/rang/rung "
      "rise/rose/risen run/ran/run say/said/said see/saw/seen "
      "seek/sought/sought sell/sold/sold send/sent/sent set/set/set "
      "shake/shook/shaken shine/shone/shone shoot/shot/shot show/showed/shown "
      "shrink/shrank/shrunk shut/shut/shut sing/sang/sung sink/sank/sunk "
      "sit/sat/sat slide/slid/slid speak/spoke/spoken spend/spent/spent "
      "spin/spun/spun split/split/split spread/spread/spread "
      "spring/sprang/sprung stand/stood/stood steal/stole/stolen "
      "stick/stuck/stuck sting/stung/stung strike/struck/struck "
      "strive/strove/striven swear/swore/sworn sweep/swept/swept "
      "swim/swam/swum swing/swung/swung take/took/taken teach/taught/taught "
      "tear/tore/torn tell/told/told think/thought/thought throw/threw/thrown "
      "undergo/underwent/undergone understand/understood/understood "
      "undertake/undertook/undertaken uphold/upheld/upheld wake/woke/woken "
      "wear/wore/worn weave/wove/woven win/won/won wind/wound/wound "
      "withdraw/withdrew/withdrawn withhold/withheld/withheld "
      "withstand/withstood/withstood write/wrote/written"
    ).split()
  )
}
# Past tenses and participles of irregular verbs, but not the auxiliaries
# (was, had, did).
_PARTICIPLES = frozenset(
  form
  for base, forms in _IRREGULAR.items()
  if base not in ("be", "have", "do")
  for form in forms
)
_PAST_FORMS = frozenset(p for p, _ in _IRREGULAR.values())
# Words ending in "ed" that are not verb forms.
_NOT_PARTICIPLES = frozenset(
  "hundred red bed shed sacred naked wicked kindred sled bred breed need "
  "seed speed feed indeed creed greed deed steed proceed succeed exceed "
  "wed".split()
)

# Nouns ending in "s" that are singular.
_SINGULAR_S = frozenset(
  "series species news physics mathematics economics politics means "
  "headquarters".split()
)
# Words that may open a fronted phrase before the wh-word ("Along with X,
# what ...").
_FRONTING = frozenset(
  "along according besides aside apart other since despite though although "
  "while if unlike following prior due based except when after before "
  "in on at during".split()
)
# Words ending in "ing" that are nouns or prepositions, not progressives.
_ING_NOUNS = frozenset(
  "building buildings meeting painting wedding king ring thing things spring "
  "evening morning beginning something nothing anything everything string "
  "wing ceiling clothing training during including according regarding "
  "following concerning bring sing swing sting".split()
)

# The word before a noun, and before a verb, in a passage.
_NOUN_CUES = frozenset("the a an his her its their our my your these".split())
_VERB_CUES = frozenset(
  "he she they we i to will would can could may might must should not "
  "also did does".split()
)

# Verbs that come before another verb or a verb-like noun ("have access",
# "help build").
_VERB_TAKERS = frozenset("have get make let help be do go come".split())
# Words that open a subordinate clause.
_SUBORDINATORS = frozenset(
  "when while whilst if because although though since until whereas "
  "unless".split()
)

_BE = frozenset("is are was were am isn't aren't wasn't weren't".split())
_DO = frozenset("do does did".split())
_NOT_DO = frozenset("don't doesn't didn't".split())
_HAVE = frozenset("has have had hasn't haven't hadn't".split())
_MODALS = frozenset(
  "can could will would should may might must shall cannot can't couldn't "
  "won't wouldn't shouldn't".split()
)
_AUX = _BE | _DO | _NOT_DO | _HAVE | _MODALS
_PAST_AUX = frozenset(
  "was were did had could would might wasn't weren't didn't hadn't "
  "couldn't wouldn't".split()
)

_WH = frozenset("what which who whom whose when where why how".split())
_DETERMINERS = frozenset(
  "the a an this that these those his her its their our my your each every "
  "some any many much most all both several few no another other such "
  "one".split()
)
_PRONOUNS = frozenset("he she it they we you i there".split())
_RELATIVIZERS = frozenset("that which who whom whose where".split())
# Prepositions that may continue a noun phrase ("the price of oil").
_NP_LINKS = frozenset("of for and & in on at from with".split())
_PREPOSITIONS = frozenset(
  "of for in on at from with to by about as into onto over under between "
  "among through during after before against within without than like "
  "near behind across along around upon toward towards via per".split()
)
_ADVERBS = frozenset(
  "also still first ever not never often always already again later then "
  "now once only just even initially originally eventually finally "
  "formally officially publicly actually really mainly mostly usually "
  "currently typically generally primarily largely frequently commonly "
  "traditionally historically most more less very soon already best "
  "worst".split()
)
_ADJECTIVES = frozenset(
  "rare common important popular large small big high low long short old "
  "new young good bad different similar hot cold dark bright blue red green "
  "white black yellow free true false able likely unique difficult easy "
  "hard strong weak necessary possible useful famous special significant "
  "unusual known responsible effective successful vulnerable unable "
  "present absent available".split()
)
_ADJECTIVE_SUFFIXES = ("ous", "ful", "able", "ible", "less", "ical")
# Words a name span may hold between two capitalized words.
# ("and" is left out: "Newton and Manning" are two names.)
_NAME_LINKS = frozenset("of de du da von van & for".split())
# Capitalized words that are not names wherever they stand.
_NOT_NAMES = _WH | frozenset(
  "I The A An In On At Of For To From By With As And Or But If".split()
)

_PERSON_NOUNS = frozenset(
  "person people man woman men women king queen emperor president player "
  "quarterback coach scientist author writer artist architect leader "
  "ruler general commander official physicist chemist philosopher "
  "poet composer singer actor actress pope bishop minister governor "
  "mayor founder inventor engineer doctor teacher professor student son "
  "daughter father mother brother sister wife husband individual "
  "explorer".split()
)
_PLACE_NOUNS = frozenset(
  "country city state town village region area place location continent "
  "island river lake sea ocean mountain province county district capital "
  "nation neighborhood street building stadium venue port territory "
  "kingdom empire site park".split()
)
_TIME_NOUNS = frozenset(
  "year years date day days month months century centuries decade decades "
  "time period era season age night morning evening week hour".split()
)
_VENUE_WORDS = frozenset(
  "center centre stadium arena hall field park university college school "
  "theatre theater building church cathedral airport station museum "
  "palace house hotel club library".split()
)
_FILLER = frozenset(
  "the a an of in on at to for and or is was are were be by with as it "
  "its that this from s".split()
)

# ---------------------------------------------------------------------------
# Tokens: (text, whether whitespace precedes it).

_Token = tuple[str, bool]
_TOKEN_RE = re.compile(
  r"['’]s\b"
  r"|[A-Za-z](?:\.[A-Za-z])+\.?"
  r"|(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Col|Lt|Prof|Rev|Mt|Ft)\."
  r"|[A-Z]\.(?=\s+[A-Z])"
  r"|\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s)?"
  r"|\w+(?:-\w+)*(?:['’](?!s\b)\w+)*"
  r"|\S"
)
_WORD_RE = re.compile(r"\w+")
_NUMBER_RE = re.compile(r"^\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s)?$")
_ROMAN_RE = re.compile(r"^(?=[IVXLC]{2,}$)X{0,3}(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = (
  (40, "XL"),
  (10, "X"),
  (9, "IX"),
  (5, "V"),
  (4, "IV"),
  (1, "I"),
)


def _tokenize(text: str) -> list[_Token]:
  return [
    (m.group(), m.start() > 0 and text[m.start() - 1].isspace())
    for m in _TOKEN_RE.finditer(text)
  ]


def _fresh(text: str) -> list[_Token]:
  """Tokens of inserted text, with a space before the first one."""
  tokens = _tokenize(text)
  if tokens:
    tokens[0] = (tokens[0][0], True)
  return tokens


def _join(tokens: Sequence[_Token]) -> str:
  parts = []
  for i, (text, space) in enumerate(tokens):
    parts.append((" " if space and i else "") + text)
  return "".join(parts)


def _is_capitalized(word: str) -> bool:
  return word[:1].isupper()


def _is_number(word: str) -> bool:
  return bool(_NUMBER_RE.match(word))


def _words(text: str) -> list[str]:
  return squad.normalize_answer(text).split()


def _contains_run(haystack: Sequence[str], needle: Sequence[str]) -> bool:
  """Whether `needle` occurs in `haystack` as a contiguous run."""
  n = len(needle)
  if not n:
    return False
  first = needle[0]
  for i in range(len(haystack) - n + 1):
    if haystack[i] == first and list(haystack[i : i + n]) == list(needle):
      return True
  return False


def _match_case(word: str, like: str) -> str:
  if like.isupper() and len(like) > 1:
    return word.upper()
  if like[:1].isupper():
    return word[:1].upper() + word[1:]
  return word


# ---------------------------------------------------------------------------
# Numbers.


def _roman(value: int) -> str:
  out = []
  for amount, numeral in _ROMAN_VALUES:
    while value >= amount:
      out.append(numeral)
      value -= amount
  return "".join(out)


def _roman_value(numeral: str) -> int:
  values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
  total = 0
  for i, ch in enumerate(numeral):
    v = values[ch]
    if i + 1 < len(numeral) and values[numeral[i + 1]] > v:
      total -= v
    else:
      total += v
  return total


def _ordinal_suffix(n: int) -> str:
  if 10 <= n % 100 <= 20:
    return "th"
  return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _shift_int(n: int, rng: random.Random, year_like: bool) -> int:
  if year_like:
    shifted = n + rng.choice((-1, 1)) * rng.randint(1, 25)
  elif n <= 12:
    shifted = rng.choice([k for k in range(1, 13) if k != n])
  else:
    factor = rng.choice((rng.uniform(0.3, 0.8), rng.uniform(1.25, 3.0)))
    shifted = max(1, round(n * factor))
    # Keep the original's rounding: 30,000 shifts to 70,000, not 71,382.
    zeros = len(str(n)) - len(str(n).rstrip("0"))
    if zeros:
      shifted = max(10**zeros, round(shifted, -zeros))
  return shifted if shifted != n else n + 1


def _format_int(n: int, commas: bool) -> str:
  return f"{n:,}" if commas and n >= 1000 else str(n)


def _shift_number(word: str, rng: random.Random) -> str:
  """Another number of the same shape: `1884` -> `1871`, `19th` -> `7th`."""
  m = re.fullmatch(r"(\d{3,4})s", word)
  if m:  # A decade: 1980s.
    value = int(m.group(1))
    return f"{value + rng.choice((-1, 1)) * 10 * rng.randint(1, 4)}s"
  m = re.fullmatch(r"(\d+)(st|nd|rd|th)", word)
  if m:
    value = _shift_int(int(m.group(1)), rng, year_like=False)
    return f"{value}{_ordinal_suffix(value)}"
  if re.fullmatch(r"\d{1,3}(,\d{3})+", word):
    value = _shift_int(int(word.replace(",", "")), rng, year_like=False)
    return _format_int(value, commas=True)
  if re.fullmatch(r"\d+", word):
    value = int(word)
    year_like = len(word) == 4 and 1000 <= value <= 2100
    return str(_shift_int(value, rng, year_like))
  if re.fullmatch(r"\d+\.\d+", word):
    whole, frac = word.split(".")
    value = float(word) * rng.choice((rng.uniform(0.3, 0.8), 1.6))
    shifted = f"{value:.{len(frac)}f}"
    return shifted if shifted != word else f"{float(word) + 1:.{len(frac)}f}"
  # Other shapes (1/6, 3:30): shift every digit run.
  return re.sub(
    r"\d+",
    lambda g: str(_shift_int(int(g.group()), rng, year_like=False)),
    word,
  )


def _other_of_class(
  word: str, members: Sequence[str], rng: random.Random
) -> str:
  lower = word.lower()
  choices = [m for m in members if m.lower() != lower]
  return _match_case(rng.choice(choices), word)


# ---------------------------------------------------------------------------
# What the records tell: names and their types, verbs, answers by type.


@dataclasses.dataclass
class _ContextWords:
  """Which words a passage writes in lower case and capitalized mid-sentence."""

  lower: frozenset[str]
  capitalized: frozenset[str]


def _context_words(tokens: Sequence[_Token]) -> _ContextWords:
  lower, capitalized = set(), set()
  sentence_start = True
  for text, _ in tokens:
    if text in (".", "!", "?", ";", ":"):
      sentence_start = True
      continue
    if not text[:1].isalnum():
      continue
    if text.islower():
      lower.add(text)
    elif _is_capitalized(text) and not sentence_start:
      capitalized.add(text)
    sentence_start = False
  return _ContextWords(frozenset(lower), frozenset(capitalized))


def _name_spans(tokens: Sequence[_Token], is_name) -> list[tuple[int, int]]:
  """`[start, end)` spans of names: runs of name words and links between."""
  spans = []
  i, n = 0, len(tokens)
  while i < n:
    if not is_name(i):
      i += 1
      continue
    j = i + 1
    while j < n:
      if is_name(j):
        j += 1
      elif tokens[j][0].lower() in _NAME_LINKS and j + 1 < n and is_name(j + 1):
        j += 2
      else:
        break
    spans.append((i, j))
    i = j
  return spans


def _closed_class(word: str) -> Sequence[str] | None:
  for members in (_MONTHS, _DAYS, _DEMONYMS):
    if word in members:
      return members
  return None


def _answer_key(question: str) -> tuple[str, str]:
  """The wh-form of a question (`who`, `when`, `how many`, ...) and the noun
  after `what` / `which` (`""` when there is none)."""
  words = [w.lower() for w in _WORD_RE.findall(question)]
  for i, w in enumerate(words):
    if w == "how" and i + 1 < len(words):
      nxt = words[i + 1]
      if nxt in ("many", "much"):
        return f"how {nxt}", ""
      if nxt in _AUX:
        return "how", ""
      return "how adj", nxt
    if w in ("what", "which") and i + 1 < len(words):
      # The noun after the wh-word ("what city"), or for "what is ...",
      # the first typed noun of the question ("what is X's home country").
      after = words[i + 1 : i + 4]
      if after[0] in _BE:
        after = words[i + 2 :]
      for noun in after:
        if noun in _TIME_NOUNS or noun in _PERSON_NOUNS or noun in _PLACE_NOUNS:
          return w, noun
        if noun in _AUX:
          break
      return w, ""
    if w in ("who", "whom", "whose"):
      return "who", ""
    if w in _WH:
      return w, ""
  return "other", ""


def _is_date(answer: str) -> bool:
  words = _WORD_RE.findall(answer)
  if len(words) <= 3 and any(w in _DAYS for w in words):
    return True
  return any(w in _MONTHS for w in words) and any(w.isdigit() for w in words)


def _is_year(answer: str) -> bool:
  """A year or decade: `1884`, `in 1884`, `the 1980s`, `800 AD`."""
  text = answer.strip(" .,")
  prefix = r"(?:(?:in|by|around|c\.|circa|the|early|late|mid)\s+)*"
  return bool(
    re.fullmatch(prefix + r"1\d{3}s?|20\d{2}s?", text)
    or re.fullmatch(prefix + r"\d{1,4}\s*(?:AD|BC|BCE|CE)", text)
  )


def _is_quantity(answer: str) -> bool:
  words = answer.strip().lower().split()
  if not words:
    return False
  if re.match(
    r"(?:about |approximately |around |over |nearly |almost |some )?[$£€]?\d",
    " ".join(words),
  ):
    return True
  first = words[0]
  return (
    first in _NUMBER_WORDS
    or first in _MAGNITUDES
    or first in ("dozens", "hundreds", "thousands", "millions", "billions")
    or (first in ("one", "a") and len(words) > 1 and words[1] in _MAGNITUDES)
  )


def _is_name(answer: str) -> bool:
  words = _WORD_RE.findall(answer)
  content = [w for w in words if w.lower() not in _NAME_LINKS]
  return (
    bool(content)
    and all(_is_capitalized(w) or w.isdigit() for w in content)
    and any(_is_capitalized(w) for w in content)
  )


_TIME_CUES = frozenset(
  "after before during until since when while ago age era period century "
  "centuries decade decades year years month months week weeks day days "
  "morning evening night spring summer autumn winter early late mid "
  "beginning end time times reign dynasty war".split()
)


def _is_time_phrase(answer: str) -> bool:
  """Whether a phrase says a time ("after the war", "the 12th century")."""
  words = _WORD_RE.findall(answer)
  return any(
    w.isdigit()
    or w in _MONTHS
    or w in _DAYS
    or w.lower() in _TIME_CUES
    or w.lower() in _ORDINALS
    or re.fullmatch(r"\d+(st|nd|rd|th|s)", w)
    for w in words
  )


def _number_type(answer: str) -> tuple[str, str]:
  if re.search(r"[$£€]|dollar|pound|euro", answer):
    return NUMBER, "number/money"
  if re.search(r"%|percent", answer):
    return NUMBER, "number/percent"
  return NUMBER, NUMBER


def _answer_type(question: str, answer: str) -> tuple[str, str]:
  """The answer's type and the pool key it draws fake answers from."""
  wh, noun = _answer_key(question)
  if wh in ("how many", "how much"):
    return _number_type(answer)
  if _is_date(answer):
    return DATE, DATE
  if _is_year(answer):
    return YEAR, YEAR
  time_question = wh == "when" or noun in _TIME_NOUNS
  if time_question:
    # Only answers that say a time serve other "when" questions.
    return PHRASE, "when" if _is_time_phrase(answer) else "what"
  if _is_quantity(answer):
    return _number_type(answer)
  person = wh == "who" or noun in _PERSON_NOUNS
  place = wh == "where" or noun in _PLACE_NOUNS
  if _is_name(answer):
    if person:
      return PERSON, PERSON
    if place:
      return PLACE, PLACE
    return NAME, NAME
  if person:
    return PHRASE, "who"
  if place:
    return PHRASE, "where"
  if wh in ("why", "how"):
    return PHRASE, wh
  if wh == "how adj":
    return PHRASE, f"how {noun}"
  return PHRASE, "what"


def _clean_answer(text: str) -> str:
  text = " ".join(text.split())
  text = text.strip(" ,;:")
  if text.endswith(".") and not re.search(r"\b\w\.$", text):
    text = text[:-1].rstrip()
  return text


class _Lexicon:
  """What the records' passages and answers tell about words and names."""

  def __init__(self, records: Sequence[Record]):
    self.context_words: dict[str, _ContextWords] = {}
    vocab: set[str] = set()
    lower_forms: set[str] = set()
    noun_evidence: collections.Counter[str] = collections.Counter()
    verb_evidence: collections.Counter[str] = collections.Counter()
    # Shape (all capitals, words) -> names, each with the first article
    # that has it, in order of first appearance.
    names: dict[tuple[bool, int], dict[str, str]] = collections.defaultdict(
      dict
    )
    for record in records:
      if record.context in self.context_words:
        continue
      tokens = _tokenize(record.context)
      words = _context_words(tokens)
      self.context_words[record.context] = words
      prev = ""
      for text, _ in tokens:
        lower = text.lower()
        vocab.add(lower)
        if text.islower():
          lower_forms.add(text)
        if prev in _NOUN_CUES:
          noun_evidence[lower] += 1
        elif prev in _VERB_CUES:
          verb_evidence[lower] += 1
        prev = lower
      for start, end in _context_name_spans(tokens, words):
        text = _join(tokens[start:end])
        shape = (text.isupper(), end - start)
        names[shape].setdefault(text, record.title)
    # Capitalized words that the passages also write in lower case are not
    # names ("Concerning", "That Jesus Christ").
    names = {
      shape: {
        text: title
        for text, title in by_text.items()
        if not _common_first_word(text, lower_forms)
      }
      for shape, by_text in names.items()
    }
    self.vocab = frozenset(vocab)
    self.noun_evidence = noun_evidence
    self.verb_evidence = verb_evidence
    self.names = {
      shape: tuple(by_text.items()) for shape, by_text in names.items()
    }
    # Last word of a name of several words -> those names.
    by_head: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for (_, length), pool in self.names.items():
      if length > 1:
        for text, title in pool:
          by_head[text.split()[-1]].append((text, title))
    self.names_by_head = dict(by_head)
    # Answers by pool key, and names whose type the answers tell.
    answers: dict[object, dict[str, str]] = collections.defaultdict(dict)
    self.name_types: dict[str, str] = {}
    for record in records:
      if not record.answers:
        continue
      text = _clean_answer(record.answers[0].text)
      if not _poolable(text):
        continue
      answer_type, key = _answer_type(record.question, text)
      answers[key].setdefault(text, record.title)
      if key != answer_type and answer_type != NUMBER:
        # Phrases of any wh-form are the last resort of every phrase key;
        # money and percentages stay apart from counts.
        answers[answer_type].setdefault(text, record.title)
      if answer_type == PHRASE:
        answers[key, self.phrase_shape(text)].setdefault(text, record.title)
      if answer_type in (PERSON, PLACE):
        self.name_types.setdefault(text, answer_type)
    self.answers = {
      key: tuple(by_text.items()) for key, by_text in answers.items()
    }
    self.answers_by_length: dict[tuple[object, int], list[tuple[str, str]]] = (
      collections.defaultdict(list)
    )
    for key, pool in self.answers.items():
      for text, title in pool:
        self.answers_by_length[key, len(text.split())].append((text, title))

  def phrase_shape(self, text: str) -> str:
    """A rough phrase type from the first word: `to` + verb, a gerund, a
    verb phrase, a prepositional phrase or a noun phrase."""
    words = text.split()
    first = words[0].lower() if words else ""
    if first == "to":
      return "to"
    if first.endswith("ing") and len(first) > 4:
      return "ing"
    if first in _PREPOSITIONS:
      return "pp"
    if first not in _DETERMINERS and self.is_base_verb(first):
      return "verb"
    return "np"

  def past(self, base: str) -> str:
    if base in _IRREGULAR:
      return _IRREGULAR[base][0]
    if base.endswith("e"):
      return base + "d"
    if base.endswith("y") and base[-2:-1] not in tuple("aeiou"):
      return base[:-1] + "ied"
    doubled = base + base[-1] + "ed"
    if doubled in self.vocab and base + "ed" not in self.vocab:
      return doubled
    return base + "ed"

  def is_base_verb(self, word: str) -> bool:
    """Whether the passages use `word` as a verb more than as a noun."""
    if not word.isalpha():
      return False
    if word in _IRREGULAR or word in _AUX:
      return True
    if word in _ADVERBS or word in _PREPOSITIONS or word in _DETERMINERS:
      return False
    past = self.past(word)
    return past in self.vocab and (
      self.verb_evidence[word] >= self.noun_evidence[word]
    )

  def is_verb_form(self, word: str) -> bool:
    """Whether `word` is a past tense, participle or 3rd-person verb form."""
    if not word.isalpha():
      return False
    if word in _PARTICIPLES or word in _AUX:
      return True
    if _is_participle(word):
      return True
    if word.endswith("s") and len(word) > 3:
      for base in (word[:-1], word[:-2]):
        if base in _IRREGULAR:
          return True
      evidence = self.verb_evidence[word] - self.noun_evidence[word]
      return evidence >= 0 and self.is_base_verb(word[:-1])
    return False


def _common_first_word(name: str, lower_forms: set[str]) -> bool:
  """Whether a name starts with a word the passages write in lower case
  (one-word names), or with a function word (longer names)."""
  words = name.split()
  first = words[0].lower()
  if len(words) == 1:
    return first in lower_forms
  return (
    first in _DETERMINERS
    or first in _PREPOSITIONS
    or first in _PRONOUNS
    or first in _SUBORDINATORS
    or first in _WH
    or first in _AUX
  ) and first != "the"


def _poolable(text: str) -> bool:
  """Whether an answer may serve as another question's fake answer: short,
  not a list, no stray quote or bracket."""
  if not text or len(text.split()) > _MAX_FAKE_WORDS:
    return False
  if text[0] in "'‘’" or text[-1] in "'‘’":
    return False
  if re.search(r"[,;\[\]()\"“”]| and | or ", text) and not (
    _is_date(text) or _is_quantity(text)
  ):
    return False
  return True


def _context_name_spans(
  tokens: Sequence[_Token], words: _ContextWords
) -> list[tuple[int, int]]:
  """Names written mid-sentence in a passage."""
  starts = set()
  sentence_start = True
  for i, (text, _) in enumerate(tokens):
    if text in (".", "!", "?", ";", ":", '"', "(", "“"):
      sentence_start = text in (".", "!", "?", ";", ":") or sentence_start
      continue
    if sentence_start:
      starts.add(i)
    sentence_start = False

  def is_name(i: int) -> bool:
    text = tokens[i][0]
    return (
      _is_capitalized(text)
      and i not in starts
      and text not in _NOT_NAMES
      and text.isalpha()
      and _closed_class(text) is None
    )

  return [(s, e) for s, e in _name_spans(tokens, is_name) if e - s <= 4]


def _is_participle(word: str) -> bool:
  return word in _PARTICIPLES or (
    word.endswith("ed") and len(word) > 3 and word not in _NOT_PARTICIPLES
  )


def _is_progressive(
  tokens: Sequence[_Token], j: int, lexicon: _Lexicon
) -> bool:
  """Whether `tokens[j]` is an -ing verb after a subject ("X is doing"),
  not a noun ("the MA ranking", "city center shopping complexes"): the
  passages never write it after an article or possessive, and it follows a
  bare name, a pronoun or an adverb, or comes before `to`, a determiner, a
  preposition or the end."""
  lower = tokens[j][0].lower()
  if not lower.endswith("ing") or len(lower) < 5 or lower in _ING_NOUNS:
    return False
  if lexicon.noun_evidence[lower]:
    return False
  before = _lower(tokens, j - 1)
  if before in _DETERMINERS or (
    _is_modifier(before) and not _is_adverb(before)
  ):
    return False
  nxt = _lower(tokens, j + 1)
  if j and _is_capitalized(tokens[j - 1][0]):
    # "Kenya doing", "leaders in Europe feeling about"; not "the MA
    # ranking that".
    return all(_is_capitalized(w) for w, _ in tokens[:j]) or (
      nxt in _PREPOSITIONS or nxt in _NOUN_CUES or nxt == "to"
    )
  if before in _PRONOUNS or _is_adverb(before):
    return True
  return not nxt or nxt == "to" or nxt in _DETERMINERS or nxt in _PREPOSITIONS


def _is_adjective(word: str) -> bool:
  return word in _ADJECTIVES or (
    len(word) > 5 and word.endswith(_ADJECTIVE_SUFFIXES)
  )


def _is_adverb(word: str) -> bool:
  return word in _ADVERBS or (len(word) > 4 and word.endswith("ly"))


def _third_person(base: str) -> str:
  special = {"be": "is", "have": "has", "do": "does", "go": "goes"}
  if base in special:
    return special[base]
  if base.endswith(("s", "sh", "ch", "x", "z", "o")):
    return base + "es"
  if base.endswith("y") and base[-2:-1] not in tuple("aeiou"):
    return base[:-1] + "ies"
  return base + "s"


# ---------------------------------------------------------------------------
# Step 1: mutate the question.


@dataclasses.dataclass
class _Mutation:
  tokens: list[_Token]
  substitutions: list[tuple[str, str]]
  # Token indices that are names (for capitalization decisions).
  proper: set[int]


def _is_proper(tokens: Sequence[_Token], i: int, words: _ContextWords) -> bool:
  """Whether the capitalized question word `tokens[i]` is a proper noun."""
  text = tokens[i][0]
  if not _is_capitalized(text) or text in _NOT_NAMES:
    return False
  if not any(ch.isalpha() for ch in text):
    return False
  at_start = i == 0 or tokens[i - 1][0] in (".", "?", "!", '"', "“")
  if text.lower() in _WH:
    # "Doctor Who" is a name; a wh-word after a capitalized word is not.
    return not at_start and _is_capitalized(tokens[i - 1][0])
  common = text.lower() in words.lower and text not in words.capitalized
  if at_start:
    return text in words.capitalized and text.lower() not in words.lower
  return not common


def _substitute_name(
  name: str,
  title: str,
  context: str,
  question: str,
  lexicon: _Lexicon,
  rng: random.Random,
) -> str | None:
  """A name from another article: of the same type where the records'
  answers tell it (persons, places), else with the same last word ("Nobel
  Prize" -> "Pulitzer Prize"), else of the same shape (words, capitals)."""
  words = name.split()
  kind = lexicon.name_types.get(name)
  pools: list[Sequence[tuple[str, str]]] = []
  if kind is not None:
    pools.append(lexicon.answers_by_length.get((kind, len(words)), ()))
    pools.append(lexicon.answers.get(kind, ()))
  if len(words) > 1:
    pools.append(lexicon.names_by_head.get(words[-1], ()))
  pools.append(lexicon.names.get((name.isupper(), len(words)), ()))
  for pool in pools:
    if not pool:
      continue
    for _ in range(_MAX_DRAWS // 2):
      text, source = pool[rng.randrange(len(pool))]
      if (
        source != title
        and text != name
        and text not in context
        and text not in question
      ):
        return text
  return None


def _mutate(record: Record, lexicon: _Lexicon, rng: random.Random) -> _Mutation:
  question = record.question.strip().rstrip("?.!").rstrip()
  tokens = _tokenize(question)
  words = lexicon.context_words[record.context]
  antonyms = _ANTONYMS
  out = list(tokens)
  substitutions: list[tuple[str, str]] = []
  proper = {i for i in range(len(tokens)) if _is_proper(tokens, i, words)}
  numbers_done = set()
  names: dict[str, str | None] = {}
  for start, end in _name_spans(tokens, lambda i: i in proper):
    texts = [t for t, _ in tokens[start:end]]
    if end - start == 1:
      members = _closed_class(texts[0])
      if members is not None:
        new = _other_of_class(texts[0], members, rng)
        out[start] = (new, tokens[start][1])
        substitutions.append((texts[0], new))
        continue
      if _ROMAN_RE.match(texts[0]):
        value = _roman_value(texts[0])
        new = _roman(max(1, value + rng.choice((-3, -2, -1, 1, 2, 3))))
        if new == texts[0]:
          new = _roman(value + 1)
        out[start] = (new, tokens[start][1])
        substitutions.append((texts[0], new))
        continue
    name = _join(tokens[start:end])
    if name not in names:
      names[name] = _substitute_name(
        name, record.title, record.context, question, lexicon, rng
      )
      if names[name] is not None:
        # Two names never become the same one.
        question += " " + names[name]
    new = names[name]
    if new is None:
      continue
    substitutions.append((name, new))
    replacement = _fresh(new)
    replacement[0] = (replacement[0][0], tokens[start][1])
    out[start] = replacement  # type: ignore[assignment]
    for k in range(start + 1, end):
      out[k] = None  # type: ignore[assignment]
  for i, (text, space) in enumerate(tokens):
    if out[i] is not tokens[i] and out[i] != tokens[i]:
      continue
    lower = text.lower()
    new = None
    if _is_number(text) and i not in numbers_done:
      new = _shift_number(text, rng)
    elif i in proper:
      continue
    elif lower in _NUMBER_WORDS:
      new = _other_of_class(text, _NUMBER_WORDS, rng)
    elif lower in _ORDINALS:
      new = _other_of_class(text, _ORDINALS, rng)
    elif lower in _MAGNITUDES:
      new = _other_of_class(text, _MAGNITUDES[1:], rng)
    elif lower in antonyms:
      new = _match_case(antonyms[lower], text)
    if new is not None and new != text:
      out[i] = (new, space)
      substitutions.append((text, new))
  flat: list[_Token] = []
  flat_proper: set[int] = set()
  for i, item in enumerate(out):
    if item is None:
      continue
    if isinstance(item, list):
      flat_proper.update(range(len(flat), len(flat) + len(item)))
      flat.extend(item)
    else:
      if i in proper:
        flat_proper.add(len(flat))
      flat.append(item)
  return _Mutation(flat, substitutions, flat_proper)


# ---------------------------------------------------------------------------
# Step 2: the fake answer.


def _mutate_answer(text: str, rng: random.Random) -> str | None:
  """The answer with its numbers shifted and its month, weekday, magnitude,
  unit or comparative changed: `21 February 1804` -> `9 June 1811`, `17 nm`
  -> `9 μm`, `18% higher` -> `7% lower`."""
  tokens = _tokenize(text)
  has_month = any(word in _MONTHS for word, _ in tokens)
  antonyms = _ANTONYMS
  out = []
  changed = False
  for word, space in tokens:
    new = word
    lower = word.lower()
    if has_month and re.fullmatch(r"\d{1,2}", word) and int(word) <= 31:
      new = str(rng.choice([d for d in range(1, 29) if d != int(word)]))
    elif _is_number(word):
      new = _shift_number(word, rng)
    elif word in _MONTHS:
      new = _other_of_class(word, _MONTHS, rng)
    elif word in _DAYS:
      new = _other_of_class(word, _DAYS, rng)
    elif lower in _MAGNITUDES:
      new = _other_of_class(word, _MAGNITUDES[1:], rng)
    elif lower in _NUMBER_WORDS:
      new = _other_of_class(word, _NUMBER_WORDS, rng)
    elif lower in _UNIT_GROUP:
      new = _other_of_class(word, _UNIT_GROUP[lower], rng)
    elif lower in antonyms:
      new = _match_case(antonyms[lower], word)
    changed = changed or new != word
    out.append((new, space))
  return _join(out) if changed else None


def _drop_shared(text: str, golds: Sequence[str]) -> str:
  """`text` without the words it shares with a gold answer; a shared `to`
  or `and` between two numbers becomes `until` or `&` ("1891 until
  1895")."""
  gold_words = {w for g in golds for w in _words(g)}
  tokens = _tokenize(text)
  kept = []
  for i, (word, space) in enumerate(tokens):
    if not set(_words(word)) & gold_words:
      kept.append((word, space))
      continue
    between_numbers = (
      0 < i < len(tokens) - 1
      and _is_number(tokens[i - 1][0])
      and _is_number(tokens[i + 1][0])
    )
    other = {"to": "until", "and": "&"}.get(word.lower())
    if between_numbers and other and other not in gold_words:
      kept.append((other, space))
  if kept:
    kept[0] = (kept[0][0], False)
  return _join(kept).strip(" ,;:")


def _has_number_or_date(text: str) -> bool:
  return any(ch.isdigit() for ch in text) or any(
    w.lower() in _NUMBER_WORDS or w in _MONTHS or w in _DAYS
    for w in _WORD_RE.findall(text)
  )


def _acceptable_fake(
  fake: str,
  golds: Sequence[str],
  gold_words: frozenset[str],
  question_words: frozenset[str],
) -> bool:
  """SQuAD F1 0 against every gold answer (`gold_words`: their normalized
  words), and no content word of the question.

  A fake answer that repeats the question's names would make the sentence
  about itself ("Chopin was Chopin's teacher").
  """
  words = set(_words(fake))
  if not words or words & gold_words or (words - _FILLER) & question_words:
    return False
  # No shared word means F1 0; the official function says so too.
  return all(squad.f1_score(fake, g) == 0 for g in golds)


def _fake_answer(
  record: Record,
  answer_type: str,
  key: object,
  mutated_question: str,
  lexicon: _Lexicon,
  rng: random.Random,
) -> str | None:
  """A fake answer of the gold answer's type with F1 0 against every gold
  answer, or None when none is found."""
  golds = [a.text for a in record.answers]
  gold = _clean_answer(golds[0])
  question_words = frozenset(_words(mutated_question))
  gold_words = frozenset(w for g in golds for w in _words(g))
  # Mutate the answer without its parenthetical ("1.5 m (4 ft 11 in)").
  core = re.sub(r"\s*\([^)]*\)", "", gold).strip() or gold
  candidates = []
  members = _closed_class(core)
  if members is not None:
    # A nationality, month or weekday: another one ("Korean" -> "Danish").
    candidates.append(_other_of_class(core, members, rng))
  if answer_type in (DATE, YEAR, NUMBER):
    for _ in range(3):
      fake = _mutate_answer(core, rng)
      if fake is None:
        break
      fake = _drop_shared(fake, golds)
      if _has_number_or_date(fake):
        candidates.append(fake)
  how_many = _answer_key(record.question)[0] == "how many"
  if how_many:
    # The template says the counted noun: "<fake> quadrangles".
    candidates = [p for p in map(_number_part, candidates) if p]
  for fake in candidates:
    if _acceptable_fake(fake, golds, gold_words, question_words):
      return fake
  length = len(gold.split())
  keys = list(dict.fromkeys((key, answer_type)))
  if answer_type == PHRASE:
    keys.insert(0, (key, lexicon.phrase_shape(gold)))
  pools = [lexicon.answers_by_length.get((keys[0], length), ())] + [
    lexicon.answers.get(k, ()) for k in keys
  ]
  for pool in pools:
    if not pool:
      continue
    for _ in range(_MAX_DRAWS // 2):
      text, source = pool[rng.randrange(len(pool))]
      if how_many:
        text = _number_part(text)
      if (
        text
        and source != record.title
        and _acceptable_fake(text, golds, gold_words, question_words)
      ):
        return text
  return None


def _number_part(text: str) -> str:
  """The leading number of a quantity: `210 miles` -> `210`."""
  kept = []
  for word, space in _tokenize(text):
    lower = word.lower()
    if (
      _is_number(word)
      or lower in _NUMBER_WORDS
      or lower in _MAGNITUDES
      or word in ("$", "£", "€", "%", ",", ".")
      or lower in ("about", "approximately", "over", "nearly", "almost")
    ):
      kept.append((word, space))
    else:
      break
  return _join(kept).strip(" ,.")


# ---------------------------------------------------------------------------
# Step 3: the declarative sentence.


def _lower(tokens: Sequence[_Token], index: int) -> str:
  return tokens[index][0].lower() if -len(tokens) <= index < len(tokens) else ""


def _is_modifier(word: str) -> bool:
  """Words that come before a noun's head: adjectives, ordinals, numbers."""
  return (
    _is_adjective(word)
    or word in _ORDINALS
    or word in _NUMBER_WORDS
    or word in _ANTONYM_WORDS
  )


def _starts_np(tokens: Sequence[_Token], i: int, proper: set[int]) -> bool:
  """Whether a noun phrase (a subject or object) starts at `tokens[i]`."""
  if i >= len(tokens):
    return False
  word = tokens[i][0]
  lower = word.lower()
  if (
    lower in _DETERMINERS
    or lower in _PRONOUNS
    or i in proper
    or _is_capitalized(word)
    or _is_number(word)
  ):
    return True
  nxt = _lower(tokens, i + 1)
  if _is_participle(lower):
    # "detached homes" is a noun phrase, "developed by" is not.
    return (
      bool(nxt)
      and nxt.isalpha()
      and not (
        nxt in _PREPOSITIONS
        or nxt in _DETERMINERS
        or nxt in _AUX
        or nxt in ("to", "not")
        or _is_adverb(nxt)
      )
    )
  if (
    lower in _AUX
    or lower in _PREPOSITIONS
    or _is_adverb(lower)
    or lower in ("be", "have", "being", "been", "not", "to", ",")
    or not word[:1].isalnum()
  ):
    return False
  if _is_adjective(lower):
    # "strong forces" is a noun phrase, "responsible for" is not.
    nxt = _lower(tokens, i + 1)
    return bool(nxt) and nxt not in _PREPOSITIONS and nxt != "to"
  return True


def _np_end(tokens: Sequence[_Token], start: int, proper: set[int]) -> int:
  """The end of a subject noun phrase before its predicate (copulas)."""
  n = len(tokens)
  need_head = True
  j = start
  while j < n:
    word = tokens[j][0]
    lower = word.lower()
    if j > start and lower in _RELATIVIZERS:
      return n
    if j > start and (lower in _SUBORDINATORS or word == ","):
      return j
    if j > start and lower in _NOUN_CUES and not need_head:
      # "Shangdu a part of": a new noun phrase, the predicate.
      return j
    if lower in _DETERMINERS or word in ("'s", "’s"):
      need_head = True
    elif lower in ("of", "and", "&", "for"):
      need_head = True
    elif lower in _PRONOUNS and j == start:
      return j + 1
    elif j in proper or _is_capitalized(word) or _is_number(word):
      need_head = False
    elif need_head:
      if _is_adverb(lower):
        return j
      need_head = _is_modifier(lower) and j + 1 < n
    elif (
      _is_adverb(lower)
      or _is_adjective(lower)
      or lower in _PREPOSITIONS
      or lower in _AUX
      or _is_participle(lower)
    ):
      return j
    j += 1
  return n


def _find_participle(
  tokens: Sequence[_Token], start: int, lexicon: _Lexicon
) -> tuple[int, int] | None:
  """`(insert_at, participle)`: the passive, perfect or progressive verb
  after a subject that starts at `tokens[start]`, before any subordinate
  clause.

  `insert_at` is where the auxiliary goes: before the adverbs that precede
  the participle.
  """
  n = len(tokens)
  for j in range(start + 1, n):
    word = tokens[j][0]
    lower = word.lower()
    if lower in _SUBORDINATORS or word == "," or lower in _RELATIVIZERS:
      # The participles of a relative or subordinate clause are not the
      # main verb's ("their plan that was launched").
      return None
    if _is_capitalized(word):
      continue
    if not (_is_participle(lower) or _is_progressive(tokens, j, lexicon)):
      continue
    before = _lower(tokens, j - 1)
    if (
      before in _RELATIVIZERS
      or before in _DETERMINERS
      or (_is_modifier(before) and before not in _ADVERBS)
    ):
      continue
    k = j
    while k - 1 > start and _is_adverb(_lower(tokens, k - 1)):
      k -= 1
    return k, j
  return None


def _find_verb(
  tokens: Sequence[_Token], start: int, proper: set[int], lexicon: _Lexicon
) -> tuple[int, bool] | None:
  """`(index, confirmed)` of the main verb after an inverted subject.

  `confirmed` is false when no word is known as a verb and the first word
  after the subject's head is taken as the verb.
  """
  n = len(tokens)
  need_head = True
  only_names = True  # The subject so far is a bare name ("did Tesla").
  guess = None
  j = start
  while j < n:
    word = tokens[j][0]
    lower = word.lower()
    if lower in _DETERMINERS or word in ("'s", "’s"):
      need_head, only_names = True, False
    elif j == start and (
      lower in _PRONOUNS
      or (
        lower in ("one", "this", "that", "these", "those")
        and lexicon.is_base_verb(_lower(tokens, j + 1))
      )
    ):
      # "would this have", "would one want"
      need_head = False
    elif lower in _NP_LINKS:
      # "CBS and Fox" is still a bare name.
      need_head = True
      only_names = only_names and lower in ("and", "&")
    elif j in proper or _is_capitalized(word) or _is_number(word):
      need_head = False
      # "did Hungarian armies": a nationality is no bare name.
      only_names = only_names and word not in _DEMONYMS
    elif word in ("'", "’"):
      # "LeGrande' curve": a possessive.
      need_head, only_names = True, False
    elif not word[:1].isalnum():
      pass
    elif (_is_adverb(lower) or lower in _ORDINALS) and not need_head:
      # "did X first establish"
      pass
    elif need_head:
      need_head = _is_modifier(lower)
      only_names = False
    elif lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
      # After do / a modal the verb is a base form: this is a plural noun.
      need_head = False
    else:
      nxt = _lower(tokens, j + 1)
      noun_like = lexicon.noun_evidence[lower] > lexicon.verb_evidence[lower]
      if (
        only_names
        and j > start
        and not (noun_like and lexicon.is_base_verb(nxt))
      ):
        # "did Tesla begin", but "did Huguenot nobility settle".
        return j, True
      if _lower(tokens, j + 1) == "to" and lexicon.is_base_verb(
        _lower(tokens, j + 2)
      ):
        # "need to lead", "want to buy"
        return j, True
      if lexicon.is_base_verb(lower):
        # A verb followed by another verb-like word is a noun ("the
        # halftime show feature"), unless it takes a verb ("have access").
        nxt = _lower(tokens, j + 1)
        if (
          lower in _VERB_TAKERS
          or not nxt
          or not lexicon.is_base_verb(nxt)
          or nxt in _AUX
        ):
          return j, True
      if lower in _PREPOSITIONS:
        # "did X opine about Y": the verb came before.
        if guess is not None:
          break
      elif guess is None or guess == j - 1:
        # The last word of the first run of unknown words ("servant
        # reapply").
        guess = j
    j += 1
  return (guess, False) if guess is not None else None


@dataclasses.dataclass
class _Clause:
  """A question clause turned declarative.

  Attributes:
    tokens: The declarative clause.
    after_verb: Index in `tokens` just after the main verb, participle or
      copula, where an object may go (None when unknown).
    tense: `past` or `present`, from the auxiliary.
  """

  tokens: list[_Token]
  after_verb: int | None
  tense: str


def _clause(
  tokens: Sequence[_Token], proper: set[int], lexicon: _Lexicon
) -> _Clause:
  """Un-inverts a question clause that starts with its auxiliary."""
  aux = tokens[0][0].lower()
  tense = "past" if aux in _PAST_AUX else "present"
  rest = list(tokens[1:])
  if rest:
    rest[0] = (rest[0][0], True)
  rest_proper = {i - 1 for i in proper if i > 0}
  aux_token = (aux, True)
  if aux in _DO:
    found = _find_verb(rest, 0, rest_proper, lexicon)
    if found is None:
      return _Clause(rest, None, tense)
    j, confirmed = found
    if _lower(rest, j - 1) == "not":
      # "did X not secure" -> "X did not secure".
      return _Clause(rest[: j - 1] + [aux_token] + rest[j - 1 :], j + 2, tense)
    verb = rest[j][0]
    nxt = _lower(rest, j + 1)
    plausible = confirmed or (
      not nxt
      or nxt in _DETERMINERS
      or nxt in _PREPOSITIONS
      or nxt in _PRONOUNS
      or _is_capitalized(rest[j + 1][0])
      or _is_number(nxt)
    )
    if (
      plausible
      and verb.isalpha()
      and verb.islower()
      and not verb.endswith(("ing", "ed"))
      and (verb in _IRREGULAR or verb not in _PARTICIPLES)
    ):
      if aux == "did":
        verb = lexicon.past(verb)
      elif aux == "does":
        verb = _third_person(verb)
    rest[j] = (verb, rest[j][1])
    return _Clause(rest, j + 1, tense)
  if aux in _BE or aux in _HAVE:
    found = _find_participle(rest, 0, lexicon)
    if found is not None:
      k, j = found
      return _Clause(rest[:k] + [aux_token] + rest[k:], j + 2, tense)
    end = _np_end(rest, 0, rest_proper)
    return _Clause(rest[:end] + [aux_token] + rest[end:], end + 1, tense)
  # A modal or a negated do ("didn't"): it goes before the verb after the
  # subject.
  if _lower(rest, 0) == "one" and _lower(rest, 1) != "of":
    return _Clause(rest[:1] + [aux_token] + rest[1:], 3, tense)
  found = _find_verb(rest, 0, rest_proper, lexicon)
  if found is None:
    end = _np_end(rest, 0, rest_proper)
    return _Clause(rest[:end] + [aux_token] + rest[end:], end + 1, tense)
  j, _ = found
  return _Clause(rest[:j] + [aux_token] + rest[j:], j + 2, tense)


def _object_slot(clause: _Clause) -> int | None:
  """Where the wh-object goes in a declarative clause, if it can be told.

  At the end after a stranded preposition or a final verb ("what did X
  talk about", "what did X mention", "what did X want to buy"); after the
  verb (and a following `to` + verb, and a stranded preposition) when no
  noun phrase follows it ("what would X do for Y", "what did X have to
  flow across during Y"); None when the verb already has an object.
  """
  tokens = clause.tokens
  n = len(tokens)
  if not n:
    return None
  if _lower(tokens, -1) in _PREPOSITIONS or clause.after_verb == n:
    return n
  if n >= 2 and _lower(tokens, -2) == "to" and tokens[-1][0].isalpha():
    if tokens[-1][0].islower():
      return n
  k = clause.after_verb
  if k is None:
    return None
  if _lower(tokens, k) == "to" and k + 1 < n:
    k += 2
  while (
    k < n
    and _lower(tokens, k) in _PREPOSITIONS
    and (
      k + 1 == n
      or _lower(tokens, k + 1) in _PREPOSITIONS
      or tokens[k + 1][0] == ","
    )
  ):
    k += 1
  if k >= n or not _starts_np(tokens, k, set()):
    return k
  return None


def _object_trace(tokens: Sequence[_Token], participle: int) -> bool:
  """Whether the wh-object follows the participle at `tokens[participle]`:
  nothing but prepositions after it ("called", "made of"), a stranded
  preposition at the end ("delimited in the east by"), `as` ("known as",
  "referred to as"), a final `to` + verb ("used to supply") or a
  progressive ("what is X doing")."""
  after = [w.lower() for w, _ in tokens[participle + 1 :]]
  return (
    not after
    or after[-1] in _PREPOSITIONS
    # "renamed to after the attack": a stranded preposition before another
    or (
      len(after) > 1 and after[0] in _PREPOSITIONS and after[1] in _PREPOSITIONS
    )
    or "as" in after[:2]
    or (len(after) >= 2 and after[-2] == "to")
    or tokens[participle][0].lower().endswith("ing")
  )


def _be(tense: str, plural: bool) -> str:
  if tense == "past":
    return "were" if plural else "was"
  return "are" if plural else "is"


def _is_plural(tokens: Sequence[_Token]) -> bool:
  """Whether a noun phrase is plural, by its head: the word before its first
  preposition ("the character on Wednesdays"), or the last word."""
  words = [w.lower() for w, _ in tokens]
  cut = next(
    (k for k in range(1, len(words)) if words[k] in _PREPOSITIONS), None
  )
  if cut is not None:
    words = words[:cut]
  if not words:
    return False
  head = words[-1]
  return (
    head.endswith("s")
    and not head.endswith(("ss", "us", "is"))
    and head not in _SINGULAR_S
  )


def _verb_tense(word: str) -> str:
  lower = word.lower()
  if lower in _PAST_FORMS or lower in _PAST_AUX or _is_participle(lower):
    return "past"
  return "present"


def _first(answer: str) -> str:
  words = answer.split()
  return words[0].lower() if words else ""


def _time_preposition(answer: str) -> str:
  words = answer.split()
  first = _first(answer)
  if first in _PREPOSITIONS or first in ("since", "until", "when", "while"):
    return ""
  if words and words[0].strip(",") in _DAYS:
    return "on"
  if any(w.strip(",") in _MONTHS for w in words) and any(
    re.fullmatch(r"\d{1,2},?", w) for w in words
  ):
    return "on"
  if (
    re.match(r"\d|the\b|early\b|late\b|mid\b", answer)
    or words[0] in _MONTHS
    or first in _ORDINALS
  ):
    return "in"
  return ""


def _place_preposition(answer: str) -> str:
  if _first(answer) in _PREPOSITIONS:
    return ""
  if any(w.lower() in _VENUE_WORDS for w in answer.split()):
    return "at"
  return "in"


def _reason_preposition(answer: str) -> str:
  if _first(answer) in ("because", "to", "due", "since", "as", "for", "so"):
    return ""
  if _first(answer) in ("in", "by"):
    return ""
  return "because of"


def _manner_preposition(answer: str) -> str:
  first = _first(answer)
  if first in _PREPOSITIONS or first in ("using", "because"):
    return ""
  return "by"


def _adjunct_preposition(parts: _Parts, answer: str) -> str:
  if parts.preposition:
    return parts.preposition
  if parts.wh == "when":
    return _time_preposition(answer)
  if parts.wh == "where":
    return _place_preposition(answer)
  if parts.wh == "why":
    return _reason_preposition(answer)
  if parts.wh == "how":
    return _manner_preposition(answer)
  if parts.head in _TIME_NOUNS:
    return _time_preposition(answer) or "in"
  return _place_preposition(answer)


def _has_unit(answer: str) -> bool:
  return bool(
    re.search(r"[$£€%]", answer)
    or set(answer.lower().split())
    & {"dollars", "pounds", "euros", "percent", "million", "billion"}
  )


def _measure(adjective: str, answer: str) -> list[_Token]:
  """The words after a measure: `26` -> `26 years old` for "how old"."""
  bare = bool(re.fullmatch(r"[\d,.]+", answer.strip()))
  if adjective == "old" and bare:
    return [("years", True), ("old", True)]
  if adjective in ("long", "tall", "high", "deep", "wide") and not bare:
    return [(adjective, True)]
  return []


def _wh_np_end(
  tokens: Sequence[_Token],
  start: int,
  proper: set[int],
  lexicon: _Lexicon,
  quantity: bool = False,
) -> int:
  """The end of the noun phrase after `what` / `which` / `how many`.

  After `how many` / `how much` (`quantity`) it may start with a participle
  ("forced fumbles") or `of` ("of the six packages").
  """
  n = len(tokens)
  j = start
  seen_head = False
  if quantity:
    while j < n and (
      _is_participle(_lower(tokens, j)) or _lower(tokens, j) == "of"
    ):
      j += 1
  while j < n:
    word = tokens[j][0]
    lower = word.lower()
    if lower in _RELATIVIZERS and seen_head:
      # A relative clause in the noun phrase ends at the next auxiliary
      # ("Which sculptor who did X is shown in Y?").
      k = j + 1
      while k < n and _lower(tokens, k) not in _AUX:
        k += 1
      return k
    if lower in _AUX or word in _WH or word == ",":
      return j
    if j == start and (_is_adverb(lower) or lower in _PREPOSITIONS):
      return j
    if lower in ("kind", "kinds", "type", "types", "sort", "sorts", "form"):
      if _lower(tokens, j + 1) == "of":
        j += 2
        continue
    if j in proper or _is_capitalized(word) or _is_number(word):
      seen_head = True
    elif lower in ("of", "'s", "’s", "and"):
      seen_head = False
    elif seen_head and lexicon.is_verb_form(lower):
      return j
    elif (
      seen_head
      and lower.endswith("s")
      and not lower.endswith(("ss", "us", "is"))
      and j + 1 < n
      and (
        _lower(tokens, j + 1) in _DETERMINERS
        or _lower(tokens, j + 1) in _PREPOSITIONS
        or _is_capitalized(tokens[j + 1][0])
      )
      and lexicon.noun_evidence[lower] <= lexicon.verb_evidence[lower]
    ):
      # "What river flows through X?"
      return j
    elif (
      seen_head
      and lexicon.is_base_verb(lower)
      and (
        _lower(tokens, j + 1) in _DETERMINERS
        or _lower(tokens, j + 1) in _PREPOSITIONS
      )
    ):
      # A plural subject's verb: "What cells help with ...".
      return j
    elif not seen_head and j == start and not quantity:
      # "What causes the ...", "What happened ...": no noun phrase.
      nxt = _lower(tokens, j + 1)
      opens = (
        not nxt
        or nxt in _DETERMINERS
        or nxt in _PREPOSITIONS
        or nxt in _PRONOUNS
        or nxt in ("'s", "’s", "to")
        or _is_adverb(nxt)
        or (j + 1 < n and not tokens[j + 1][0].islower())
      )
      # "What took place", "What caused X", "What gets done"
      unambiguous = (
        (lower in _PAST_FORMS and lower not in _IRREGULAR)
        or _is_participle(lower)
        or lower[:-1] in _IRREGULAR
        or lower[:-2] in _IRREGULAR
      )
      if (lexicon.is_verb_form(lower) and (opens or unambiguous)) or (
        lower.endswith("s")
        and not _is_adjective(lower)
        and not lower.endswith(("ss", "us", "is"))
        and (
          nxt in _DETERMINERS
          or nxt in _PRONOUNS
          or nxt in ("'s", "’s")
          or (j + 1 < n and _is_capitalized(tokens[j + 1][0]))
        )
      ):
        return j
      seen_head = True
    elif seen_head and lower in _PREPOSITIONS:
      # "At what point in X's sermons did Y write?": a prepositional phrase
      # up to the auxiliary belongs to the noun phrase.
      k = j + 1
      while (
        k < n
        and _lower(tokens, k) not in _AUX
        and not (
          tokens[k][0].islower() and lexicon.is_verb_form(_lower(tokens, k))
        )
      ):
        k += 1
      return k if k < n and _lower(tokens, k) in _AUX else j
    elif seen_head and (_is_adverb(lower) or lower in _ORDINALS):
      # "What researcher first used X?"
      return j
    else:
      seen_head = True
    j += 1
  return n


@dataclasses.dataclass
class _Parts:
  """A question split around its wh-phrase.

  Attributes:
    prefix: A fronted phrase ("In 1517", "Along with X,"), or in situ the
      words before the wh-phrase ("X makes up").
    preposition: A preposition before the wh-word ("In what year" -> `in`).
    wh: what, which, who, whose, when, where, why or how.
    modifier: After `how`: many, much or an adjective; "" otherwise.
    noun: The noun phrase after what / which / how many.
    tail: A phrase right after when / where ("Where in Dundee ...").
    rest: The clause after the wh-phrase.
    rest_proper: Indices of names in `rest`.
    in_situ: The wh-phrase stands where its answer goes.
    inverted: `rest` starts with an auxiliary before its subject.
    pied: `prefix` belongs to the wh-phrase, which is the clause's object
      ("Realism of what philosophers did X adopt?").
  """

  prefix: list[_Token]
  preposition: str
  wh: str
  modifier: str
  noun: list[_Token]
  tail: list[_Token]
  rest: list[_Token]
  rest_proper: set[int]
  in_situ: bool
  inverted: bool
  pied: bool

  @property
  def head(self) -> str:
    """The noun phrase's head: its last word before a preposition."""
    words = [w.lower() for w, _ in self.noun]
    for k in range(1, len(words)):
      if words[k] in _PREPOSITIONS:
        return words[k - 1]
    return words[-1] if words else ""


def _split(
  tokens: Sequence[_Token], proper: set[int], lexicon: _Lexicon
) -> _Parts | None:
  found = [
    i
    for i, (word, _) in enumerate(tokens)
    if word.lower() in _WH and i not in proper
  ]
  if not found:
    return None
  index = found[0]
  opens = index == 0 and (
    _lower(tokens, 1) in _AUX
    or tokens[0][0].lower() in ("what", "which", "who", "whom", "whose", "how")
  )
  if len(found) > 1 and not opens:
    # "When X, it releases what?", "X classifies Y who follow Z as what?":
    # a wh-word that ends the question, or the first after the last comma
    # before it, is the question's; the others open clauses.
    last = found[-1]
    commas = [i for i in range(last) if tokens[i][0] == ","]
    if last >= len(tokens) - 3:
      index = last
    elif commas and index < commas[-1]:
      index = next(i for i in found if i > commas[-1])
  wh = tokens[index][0].lower()
  wh = "who" if wh == "whom" else wh
  if _lower(tokens, index + 1) in ("'s", "’s"):
    # "What's X?" -> "What is X?"
    tokens = list(tokens)
    tokens[index + 1] = ("is", True)
  prefix = list(tokens[:index])
  preposition = ""
  if prefix and prefix[-1][0].lower() in _PREPOSITIONS:
    preposition = prefix.pop()[0].lower()
  j = index + 1
  modifier = ""
  noun: list[_Token] = []
  tail: list[_Token] = []
  if _lower(tokens, j) == "else":
    j += 1
  if wh == "how" and j < len(tokens) and _lower(tokens, j) not in _AUX:
    modifier = _lower(tokens, j)
    j += 1
  if wh in ("what", "which", "whose") or modifier in ("many", "much"):
    partitive = not modifier and _lower(tokens, j) == "of"
    end = _wh_np_end(
      tokens, j, proper, lexicon, quantity=bool(modifier) or partitive
    )
    noun = list(tokens[j:end])
    if partitive:
      # "Which of X's hymns" -> "the one of X's hymns".
      noun = [("one", True)] + noun
    j = end
  elif wh in ("when", "where") and _lower(tokens, j) in _PREPOSITIONS:
    end = j
    while end < len(tokens) and _lower(tokens, end) not in _AUX:
      end += 1
    tail = list(tokens[j:end])
    j = end
  rest = list(tokens[j:])
  rest_proper = {i - j for i in proper if i >= j}
  # "According to X, if Y then Z performs what function?": a wh-word after
  # a clause is in situ; a fronted phrase ends at the wh-word or its comma.
  clause_before = any(w == "," for w, _ in prefix[:-1])
  fronted = bool(prefix) and (
    prefix[-1][0] == ","
    or _lower(prefix, 0) in _FRONTING
    or _lower(prefix, 0) in _PREPOSITIONS
    or all(_is_adverb(w.lower()) for w, _ in prefix)
    # "Inspired by X what ..." (but "Starting in what year" is one phrase)
    or (
      not preposition
      and (
        _is_participle(_lower(prefix, 0)) or _lower(prefix, 0).endswith("ing")
      )
    )
  )
  fronted = fronted and (prefix[-1][0] == "," or not clause_before)
  inverted = _is_inverted(
    rest, rest_proper, lexicon, bool(noun), modifier in ("many", "much")
  )
  in_situ = bool(prefix) and (not rest or (not fronted and not inverted))
  # "Realism of what philosophers did X adopt?": the words before the
  # wh-word belong to the wh-phrase.
  pied = bool(prefix) and not fronted and not in_situ
  return _Parts(
    prefix=prefix,
    preposition=preposition,
    wh=wh,
    modifier=modifier,
    noun=noun,
    tail=tail,
    rest=rest,
    rest_proper=rest_proper,
    in_situ=in_situ,
    inverted=inverted,
    pied=pied,
  )


def _is_inverted(
  rest: Sequence[_Token],
  proper: set[int],
  lexicon: _Lexicon,
  has_noun: bool,
  quantity: bool,
) -> bool:
  """Whether the clause after the wh-phrase starts with an auxiliary put
  before its subject ("did X go", "was X founded"), so that the wh-phrase
  is not the subject."""
  aux = _lower(rest, 0)
  if aux not in _AUX or not _starts_np(rest, 1, proper):
    return False
  second = rest[1][0]
  if (aux in _BE or aux in _HAVE) and _is_participle(second):
    # "Who was named president of X?"
    return False
  if (
    (aux in _MODALS or aux in _DO or aux in _NOT_DO)
    and 1 not in proper
    and second.islower()
    and second not in _DETERMINERS
    and second not in _PRONOUNS
    and lexicon.is_base_verb(second)
  ):
    # "What will cause X?"
    return False
  participle = _find_participle(rest[1:], 0, lexicon)
  if aux in _HAVE and participle is None:
    # "Which team had the best season?"
    return False
  if aux in _BE and quantity and has_noun and participle is None:
    # "How many presidents are alumni?"
    return False
  return True


def _copula(
  subject: Sequence[_Token], be: list[_Token], fake: list[_Token]
) -> list[_Token]:
  """`subject be fake`, before any subordinate clause that ends the
  subject ("What was X when it began?" -> "X was <fake> when it began.")."""
  for k in range(1, len(subject)):
    if subject[k][0].lower() in _SUBORDINATORS:
      return list(subject[:k]) + be + fake + list(subject[k:])
  return list(subject) + be + fake


def _the(noun: Sequence[_Token]) -> list[_Token]:
  """`the` + the noun phrase of the wh-phrase."""
  words = list(noun)
  if words:
    words[0] = (words[0][0], True)
  return [("the", True)] + words


def _insert(
  tokens: Sequence[_Token], at: int, inserted: Sequence[_Token]
) -> list[_Token]:
  return list(tokens[:at]) + list(inserted) + list(tokens[at:])


def _declarative(
  mutation: _Mutation, answer: str, lexicon: _Lexicon
) -> tuple[list[_Token], str]:
  """The mutated question as a statement whose answer is `answer`.

  Returns:
    The statement's tokens and the name of the template that built it.
  """
  tokens = mutation.tokens
  fake = _fresh(answer)
  parts = _split(tokens, mutation.proper, lexicon)
  if parts is None:
    return list(tokens) + [(":", False)] + fake, "fallback"
  if parts.in_situ:
    # "X makes up what amount of Y?" -> "X makes up <fake>."
    pp = [(parts.preposition, True)] if parts.preposition else []
    return parts.prefix + pp + fake + parts.rest, "in_situ"
  if parts.pied and parts.head in _TIME_NOUNS:
    # "Starting in what year has X led Y?" -> "X has led Y starting in
    # <fake>."
    lead = [
      (w if i in mutation.proper else w.lower(), True)
      for i, (w, _) in enumerate(parts.prefix)
    ]
    preposition = _join(lead + [(parts.preposition, True)]).strip()
    parts = dataclasses.replace(parts, prefix=[], preposition=preposition)
  elif parts.pied:
    pp = [(parts.preposition, True)] if parts.preposition else []
    fake = parts.prefix + pp + fake
    if parts.wh == "how" and parts.modifier == "many":
      fake += parts.noun
    fake[0] = (fake[0][0], True)
    parts = dataclasses.replace(parts, prefix=[], preposition="", noun=[])
  wh, noun, rest = parts.wh, parts.noun, parts.rest

  def done(sentence: list[_Token], template: str):
    if parts.prefix:
      prefix = list(parts.prefix)
      if prefix[-1][0] != ",":
        prefix.append((",", False))
      sentence = prefix + sentence
    return sentence, template

  quantity = wh == "how" and parts.modifier in ("many", "much")
  aux = _lower(rest, 0)
  participle = _find_participle(rest[1:], 0, lexicon) if aux in _AUX else None
  inverted = parts.inverted
  # "What was X a member of?": the wh-phrase is the preposition's object.
  end = next(
    (k for k in range(1, len(rest)) if _lower(rest, k) in _SUBORDINATORS),
    len(rest),
  )
  stranded = _lower(rest, end - 1) in _PREPOSITIONS

  # The wh-phrase is the subject: the clause follows as it stands.
  if not inverted:
    if wh == "whose":
      return done(fake + [("'s", False)] + noun + rest, "whose")
    if quantity:
      # "How many people live in X?" -> "<fake> people live in X."
      head = noun if parts.modifier == "many" or not _has_unit(answer) else []
      return done(fake + head + rest, f"how_{parts.modifier}")
    if (
      wh in ("what", "which")
      and noun
      and any(w.lower() in _RELATIVIZERS for w, _ in noun[1:])
    ):
      # "Which sculptor who did X is shown in Y?" -> "<fake>, the sculptor
      # who did X, is shown in Y."
      sentence = fake + [(",", False)] + _the(noun) + [(",", False)] + rest
      return done(sentence, "what_np_subject")
    if wh in ("what", "which") and noun:
      # "Which team won X?" -> "The team that won X was <fake>."
      be = _be(_verb_tense(rest[0][0]) if rest else "present", _is_plural(noun))
      sentence = _the(noun) + [("that", True)] + rest + [(be, True)] + fake
      return done(sentence, "what_np_subject")
    if wh in ("who", "what", "which"):
      return done(fake + rest, f"{'who' if wh == 'who' else 'what'}_subject")
    return list(tokens) + [(":", False)] + fake, "fallback"

  # Copulas: "What is the capital of X?" -> "The capital of X is <fake>.",
  # unless the wh-phrase is a passive's object ("What was X called?").
  if aux in _BE and wh in ("what", "which", "who") and not stranded:
    subject = rest[1:]
    subject[0] = (subject[0][0], True)
    be = [(aux, True)]
    if not noun and (
      participle is None or not _object_trace(rest[1:], participle[1])
    ):
      template = "who_be" if wh == "who" else "what_be"
      return done(_copula(subject, be, fake), template)
    if noun and participle is None and parts.head not in _TIME_NOUNS:
      named = all(
        i in parts.rest_proper or rest[i][0] in ("'s", "’s")
        for i in range(1, len(rest))
      )
      # A definite subject: "What position was Newton?", "What colors
      # was the logo?"; but "What character is a fan?" takes the relative.
      if named or _lower(rest, 1) in _PRONOUNS or _lower(rest, 1) == "the":
        # "What position was Newton?" -> "Newton was <fake>."
        return done(_copula(subject, be, fake), "what_be")
      # "Which park is home to X?" -> "The park that is home to X is
      # <fake>."
      be_out = _be("past" if aux in _PAST_AUX else "present", _is_plural(noun))
      sentence = (
        _the(noun) + [("that", True)] + be + subject + [(be_out, True)] + fake
      )
      return done(sentence, "what_np_subject")

  clause = _clause(rest, parts.rest_proper, lexicon)
  body = clause.tokens
  adjunct = (
    wh in ("when", "where", "why")
    or (wh == "how" and not quantity)
    or (parts.head in _TIME_NOUNS and not quantity)
    or (
      parts.head in _PLACE_NOUNS
      and (bool(parts.preposition) or _lower(body, -1) in _PREPOSITIONS)
    )
  )
  if adjunct:
    if wh == "how" and parts.modifier:
      # "How old was X during Y?" -> "X was 26 years old during Y."
      measure = fake + _measure(parts.modifier, answer)
      after = clause.after_verb
      if (
        aux in _BE
        and participle is None
        and after is not None
        and (
          after >= len(body)
          or _lower(body, after) in _PREPOSITIONS
          or _lower(body, after) in _SUBORDINATORS
        )
      ):
        return done(_insert(body, after, measure), "how_adj")
      return done(body + measure, "how_adj")
    prep = _adjunct_preposition(parts, answer)
    if _lower(body, -1) in _PREPOSITIONS:
      prep = ""
    template = (
      wh
      if wh in ("when", "where", "why", "how")
      else ("what_time" if parts.head in _TIME_NOUNS else "what_place")
    )
    sentence = body + [(w, True) for w in prep.split()] + fake + parts.tail
    return done(sentence, template)

  slot = _object_slot(clause)
  if quantity:
    head = noun if parts.modifier == "many" else []
    if slot is not None:
      # "How many X does Y have?" -> "Y has <fake> X."
      return done(_insert(body, slot, fake + head), f"how_{parts.modifier}")
    what = "number" if parts.modifier == "many" else "amount"
    sentence = (
      [("the", True), (what, True), ("of", True)]
      + (head or [("it", True)])
      + [("that", True)]
      + body
      + [(_be(clause.tense, False), True)]
      + fake
    )
    return done(sentence, f"how_{parts.modifier}")
  pp = [(parts.preposition, True)] if parts.preposition else []
  if _lower(body, -1) in _PREPOSITIONS:
    pp = []
  if noun and wh != "whose":
    # "Which building was X held at?" -> "The building that X was held at
    # was <fake>."
    be = _be(clause.tense, _is_plural(noun))
    sentence = _the(noun) + [("that", True)] + body + pp + [(be, True)] + fake
    return done(sentence, "what_np_object")
  inserted = fake + [("'s", False)] + noun if wh == "whose" else fake
  if pp:
    return done(body + pp + inserted, "object")
  if slot is not None:
    return done(_insert(body, slot, inserted), "object")
  # "What did X substitute Y for in Z?" -> "What X substituted Y for in Z
  # was <fake>."
  lead = "the person who" if wh == "who" else "what"
  be = _be(clause.tense, False)
  sentence = _fresh(lead) + body + [(be, True)] + inserted
  return done(sentence, "object_cleft")


def _sentence(tokens: Sequence[_Token]) -> str:
  text = _join(tokens).strip()
  if not text:
    return text
  text = text[0].upper() + text[1:]
  if not text.endswith((".", "!", "?")):
    text += "."
  return text


# ---------------------------------------------------------------------------
# The generator.


@dataclasses.dataclass(frozen=True)
class Distractor:
  """How one adversarial variant was made.

  Attributes:
    original_id: The original question's id.
    variant_id: The variant's id (`<original_id>-addsent`).
    mutated_question: The question after step 1.
    substitutions: `(old, new)` pairs of step 1, in the question's order.
    answer_type: The gold answer's type (one of `ANSWER_TYPES`).
    fake_answer: The fake answer of step 2 as `sentence` has it
      (capitalized when it starts the sentence).
    sentence: The appended sentence.
    template: The name of the wh-form template that built `sentence`.
  """

  original_id: str
  variant_id: str
  mutated_question: str
  substitutions: tuple[tuple[str, str], ...]
  answer_type: str
  fake_answer: str
  sentence: str
  template: str


@dataclasses.dataclass(frozen=True)
class AddSentStats:
  """What the generator did.

  Attributes:
    num_records: Questions in the input.
    num_sampled: Questions sampled.
    num_variants: Variants made (`num_sampled` minus the skips).
    skipped: Reason -> sampled questions skipped for it (every reason of
      `SKIP_REASONS`, 0 when none).
    skipped_ids: Reason -> the ids skipped for it, in input order.
    answer_types: Answer type -> variants (every type of `ANSWER_TYPES`).
    templates: Template name -> variants, in order of first use.
  """

  num_records: int
  num_sampled: int
  num_variants: int
  skipped: Mapping[str, int]
  skipped_ids: Mapping[str, tuple[str, ...]]
  answer_types: Mapping[str, int]
  templates: Mapping[str, int]

  def summary(self) -> dict[str, object]:
    """JSON-able counts (without the skipped ids)."""
    return {
      "num_records": self.num_records,
      "num_sampled": self.num_sampled,
      "num_variants": self.num_variants,
      "skipped": dict(self.skipped),
      "answer_types": dict(self.answer_types),
      "templates": dict(self.templates),
    }


@dataclasses.dataclass(frozen=True)
class AdversarialSet:
  """Originals and their AddSent-style variants.

  Attributes:
    records: Each kept original record, unchanged, followed by its variant,
      in input order.
    distractors: How each variant was made, in the order of `records`.
    stats: Counts of what was sampled, made and skipped.
  """

  records: tuple[Record, ...]
  distractors: tuple[Distractor, ...]
  stats: AddSentStats


def _check(records: Sequence[Record], num_questions: int) -> None:
  if isinstance(num_questions, bool) or not isinstance(num_questions, int):
    raise ValueError(
      f"num_questions must be an int >= 0, got {num_questions!r}"
    )
  if num_questions < 0:
    raise ValueError(
      f"num_questions must be >= 0 (0 = all), got {num_questions}"
    )
  ids = set()
  for record in records:
    if not isinstance(record, Record):
      raise TypeError(
        f"expected a2d_tf.data.records.Record, got {type(record).__name__}"
      )
    if record.id in ids:
      raise DataError("duplicate question id", record_id=record.id, field="id")
    ids.add(record.id)
  for record in records:
    if record.id + ADVERSARIAL_SUFFIX in ids:
      raise DataError(
        f"the records already hold its variant {record.id}"
        f"{ADVERSARIAL_SUFFIX}; pass the original questions only",
        record_id=record.id,
        field="id",
      )


def _sample(
  records: Sequence[Record], num_questions: int, seed: int
) -> list[int]:
  n = len(records)
  if num_questions == 0 or num_questions >= n:
    return list(range(n))
  rng = random.Random(f"a2d-addsent/{seed}/sample")
  return sorted(rng.sample(range(n), num_questions))


def _gold_in(sentence: str, golds: Iterable[Sequence[str]]) -> bool:
  """Whether a gold answer (normalized words) is a run of `sentence`'s."""
  words = _words(sentence)
  return any(_contains_run(words, g) for g in golds)


def _variant(
  record: Record, lexicon: _Lexicon, seed: int
) -> tuple[Record, Distractor] | str:
  """The variant of one record, or the reason it has none."""
  if not record.answers:
    return NO_GOLD_ANSWER
  rng = random.Random(f"a2d-addsent/{seed}/{record.id}")
  golds = [a.text for a in record.answers]
  gold_runs = [_words(g) for g in golds]
  mutation = _mutate(record, lexicon, rng)
  if not mutation.substitutions:
    return NO_SUBSTITUTION
  mutated = _join(mutation.tokens) + "?"
  if _gold_in(mutated, gold_runs):
    return GOLD_IN_SENTENCE
  answer_type, key = _answer_type(record.question, _clean_answer(golds[0]))
  fake = _fake_answer(record, answer_type, key, mutated, lexicon, rng)
  if fake is None:
    return NO_FAKE_ANSWER
  tokens, template = _declarative(mutation, fake, lexicon)
  sentence = _sentence(tokens)
  if _gold_in(sentence, gold_runs):
    return GOLD_IN_SENTENCE
  separator = "" if record.context[-1:].isspace() else " "
  variant = dataclasses.replace(
    record,
    id=record.id + ADVERSARIAL_SUFFIX,
    context=record.context + separator + sentence,
  )
  distractor = Distractor(
    original_id=record.id,
    variant_id=variant.id,
    mutated_question=mutated,
    substitutions=tuple(mutation.substitutions),
    answer_type=answer_type,
    fake_answer=fake if fake in sentence else fake[:1].upper() + fake[1:],
    sentence=sentence,
    template=template,
  )
  return variant, distractor


def generate_adversarial(
  records: Sequence[Record], num_questions: int = 0, seed: int = 0
) -> AdversarialSet:
  """AddSent-style variants of a sample of questions, with statistics.

  Args:
    records: SQuAD-format records (originals only: no id may already have
      its `-addsent` variant in the list). Names and fake answers are drawn
      from the other articles (titles) of these records, so pass a whole
      dataset, not one article.
    num_questions: Questions to sample, uniformly without replacement over
      all records; 0, or a number >= len(records), takes all of them.
    seed: Seed of the sample and of every choice of the generator.

  Returns:
    An `AdversarialSet`: each sampled question that gets a variant appears
    as its original record, unchanged, followed by the variant with id
    `<id>-addsent`, whose context is the original context, a space (none
    when it already ends with white space) and the distracting sentence,
    and whose answers are the original's (their offsets stay valid).
    Sampled questions without a variant are left out of `records`
    altogether (no other question takes their place) and counted in
    `stats.skipped` by reason.

  Raises:
    ValueError: `num_questions` is negative or not an int.
    DataError: Duplicate ids, or the records already hold variants.
  """
  records = list(records)
  _check(records, num_questions)
  lexicon = _Lexicon(records)
  sampled = _sample(records, num_questions, seed)
  out: list[Record] = []
  distractors: list[Distractor] = []
  skipped_ids: dict[str, list[str]] = {reason: [] for reason in SKIP_REASONS}
  answer_types = dict.fromkeys(ANSWER_TYPES, 0)
  templates: dict[str, int] = {}
  for index in sampled:
    record = records[index]
    made = _variant(record, lexicon, seed)
    if isinstance(made, str):
      skipped_ids[made].append(record.id)
      continue
    variant, distractor = made
    out.extend((record, variant))
    distractors.append(distractor)
    answer_types[distractor.answer_type] += 1
    templates[distractor.template] = templates.get(distractor.template, 0) + 1
  stats = AddSentStats(
    num_records=len(records),
    num_sampled=len(sampled),
    num_variants=len(distractors),
    skipped={reason: len(ids) for reason, ids in skipped_ids.items()},
    skipped_ids={reason: tuple(ids) for reason, ids in skipped_ids.items()},
    answer_types=answer_types,
    templates=templates,
  )
  return AdversarialSet(tuple(out), tuple(distractors), stats)


def make_adversarial(
  records: Sequence[Record], num_questions: int = 0, seed: int = 0
) -> list[Record]:
  """The records of `generate_adversarial` (see there)."""
  return list(generate_adversarial(records, num_questions, seed).records)
