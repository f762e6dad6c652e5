"""The embedded synthetic corpus: invented entities, relations and questions.

Passages of 10 to 14 sentences (about 80 to 140 tokens) state facts about
invented people, places, organizations and devices ("Karvo Delmin founded
Ostrella Guild in 1843.", "Ostrella Guild has 412 employees."). Questions
ask for one slot of one fact in paraphrased words ("When was Ostrella Guild
set up?"), so a reader has to match the relation and its subject, not copy a
sentence.

Every question has at least two confusing distractors in the same passage:
candidate answers of the gold answer's type in other sentences that mention
an entity the question names, tied to it by another relation ("Karvo Delmin
was born in 1807" for "In what year did Karvo Delmin establish Ostrella
Guild?"); most also have one tied to other entities by the same relation
("Marlo Tessen founded Brivalle Works in 1871"). Each question's sentence
and distractor sentences are chosen first and other facts fill the passage.
The type-matching baseline (`synthetic_baseline`), which knows every
entity's type and the question's entities but not the relations, therefore
scores low, while the relations are learnable.

The `adversarial` split follows Adversarial SQuAD (AddSent): it holds every
dev question unchanged plus a variant, with id `<dev id>-addsent`, whose
passage ends with a sentence that restates the question with invented
entities and a fake answer of the right type.

Generation is deterministic: each split draws from its own `random.Random`
seeded with the split name and `seed`, so the train split does not depend on
`num_dev`. The vocabulary is small: about 230 invented words built from
syllables with a fixed seed, about a hundred English words, years and
counts.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import re
import string
import types
from collections.abc import Mapping, Sequence

from a2d_tf.data.records import Answer, Record

ADVERSARIAL_SUFFIX = "-addsent"

# Answer types of the corpus' entities.
PERSON = "person"
ORG = "organization"
PLACE = "place"
YEAR = "year"
COUNT = "count"
DEVICE = "device"

# Slot names used in templates and the type of the entity each one holds.
_SLOT_TYPES = (
  ("P", PERSON),
  ("O", ORG),
  ("L", PLACE),
  ("Y", YEAR),
  ("C", COUNT),
  ("W", DEVICE),
)

_SLOT_TYPE = types.MappingProxyType(dict(_SLOT_TYPES))

_ORG_KINDS = ("Guild", "Company", "Institute", "Society", "Works")
_DEVICE_NOUNS = ("lamp", "engine", "loom", "compass", "clock", "press", "pump")
_YEARS = (1800, 1949)
_COUNTS = (12, 999)
# Distinct same-type candidates tied to the question's entities by other
# facts that every question needs (see `_answerable`).
_MIN_DISTRACTORS = 2
# Invented worlds tried per passage before giving up (a few are usually
# enough).
_MAX_WORLDS = 1000


@dataclasses.dataclass(frozen=True)
class _Question:
  """A question template about one slot of a relation.

  Attributes:
    asked: Slot whose value is the answer.
    text: Question template; its slots are the given entities.
    statement: Declarative form of the question (slots of `text` plus the
      asked slot), used for the AddSent-style adversarial sentence.
  """

  asked: str
  text: str
  statement: str


@dataclasses.dataclass(frozen=True)
class _Relation:
  """A relation: its slots, sentence templates and question templates."""

  name: str
  slots: tuple[str, ...]
  sentences: tuple[str, ...]
  questions: tuple[_Question, ...]


def _q(asked: str, text: str, statement: str) -> _Question:
  return _Question(asked, text, statement)


_RELATIONS = (
  _Relation(
    "founded",
    ("P", "O", "Y"),
    (
      "{P} founded {O} in {Y}.",
      "{O} was founded by {P} in {Y}.",
      "In {Y}, {P} established {O}.",
      "{P} set up {O} in {Y}.",
      "{O} was started by {P} in {Y}.",
    ),
    (
      _q("P", "Who founded {O}?", "{P} founded {O}."),
      _q("P", "Who established {O}?", "{P} established {O}."),
      _q("P", "{O} was set up by whom?", "{O} was set up by {P}."),
      _q("P", "Which person started {O}?", "{P} started {O}."),
      _q("Y", "When was {O} founded?", "{O} was founded in {Y}."),
      _q(
        "Y",
        "In what year did {P} establish {O}?",
        "{P} established {O} in {Y}.",
      ),
      _q("Y", "What year was {O} set up?", "{O} was set up in {Y}."),
      _q("O", "What organization did {P} found?", "{P} founded {O}."),
      _q(
        "O",
        "Which organization was established by {P}?",
        "{O} was established by {P}.",
      ),
    ),
  ),
  _Relation(
    "directed",
    ("P", "O", "Y"),
    (
      "In {Y}, {P} became the director of {O}.",
      "{P} was named director of {O} in {Y}.",
      "{O} was led by {P} from {Y}.",
      "{P} took charge of {O} in {Y}.",
    ),
    (
      _q("P", "Who directed {O}?", "{P} directed {O}."),
      _q("P", "Who was the director of {O}?", "{P} was the director of {O}."),
      _q("P", "Who led {O}?", "{P} led {O}."),
      _q(
        "Y",
        "When did {P} become the director of {O}?",
        "{P} became the director of {O} in {Y}.",
      ),
      _q("Y", "In what year did {P} take charge?", "{P} took charge in {Y}."),
      _q("O", "Which organization did {P} lead?", "{P} led {O}."),
    ),
  ),
  _Relation(
    "born",
    ("P", "L", "Y"),
    (
      "{P} was born in {L} in {Y}.",
      "In {Y}, {P} was born in {L}.",
      "{P} was born in {Y} in the town of {L}.",
      "{L} is the birthplace of {P}, who was born in {Y}.",
    ),
    (
      _q("L", "Where was {P} born?", "{P} was born in {L}."),
      _q(
        "L", "What is the birthplace of {P}?", "The birthplace of {P} is {L}."
      ),
      _q(
        "L",
        "In which town was {P} born?",
        "{P} was born in the town of {L}.",
      ),
      _q("Y", "When was {P} born?", "{P} was born in {Y}."),
      _q("Y", "In what year was {P} born?", "{P} was born in the year {Y}."),
      _q(
        "Y", "What is the birth year of {P}?", "The birth year of {P} is {Y}."
      ),
      _q("P", "Who was born in {L}?", "{P} was born in {L}."),
    ),
  ),
  _Relation(
    "died",
    ("P", "L", "Y"),
    (
      "{P} died in {L} in {Y}.",
      "In {Y}, {P} died in {L}.",
      "{P} passed away in {L} in {Y}.",
    ),
    (
      _q("L", "Where did {P} die?", "{P} died in {L}."),
      _q(
        "L",
        "In which town did {P} pass away?",
        "{P} passed away in the town of {L}.",
      ),
      _q("Y", "When did {P} die?", "{P} died in {Y}."),
      _q("Y", "In what year did {P} pass away?", "{P} passed away in {Y}."),
      _q("P", "Who died in {L}?", "{P} died in {L}."),
    ),
  ),
  _Relation(
    "located",
    ("O", "L"),
    (
      "{O} is located in {L}.",
      "{O} is based in {L}.",
      "The headquarters of {O} are in {L}.",
      "{O} has its main office in {L}.",
    ),
    (
      _q("L", "Where is {O} located?", "{O} is located in {L}."),
      _q(
        "L", "In which city is {O} based?", "{O} is based in the city of {L}."
      ),
      _q(
        "L",
        "Where are the headquarters of {O}?",
        "The headquarters of {O} are in {L}.",
      ),
      _q("O", "Which organization is based in {L}?", "{O} is based in {L}."),
    ),
  ),
  _Relation(
    "branch",
    ("O", "L", "Y"),
    (
      "In {Y}, {O} opened a branch in {L}.",
      "{O} opened a branch in {L} in {Y}.",
      "{O} added an office in {L} in {Y}.",
    ),
    (
      _q("L", "Where did {O} open a branch?", "{O} opened a branch in {L}."),
      _q(
        "L",
        "In which city did {O} add an office?",
        "{O} added an office in the city of {L}.",
      ),
      _q("Y", "When did {O} open a branch?", "{O} opened a branch in {Y}."),
      _q(
        "Y",
        "In what year did {O} add an office in {L}?",
        "{O} added an office in {L} in {Y}.",
      ),
    ),
  ),
  _Relation(
    "staff",
    ("O", "C"),
    (
      "{O} has {C} employees.",
      "{O} employs {C} people.",
      "About {C} people work for {O}.",
      "The staff of {O} numbers {C}.",
    ),
    (
      _q("C", "How many employees does {O} have?", "{O} has {C} employees."),
      _q("C", "How many people work for {O}?", "{C} people work for {O}."),
      _q(
        "C",
        "What is the size of the staff of {O}?",
        "The size of the staff of {O} is {C}.",
      ),
    ),
  ),
  _Relation(
    "workshops",
    ("O", "C"),
    (
      "{O} owns {C} workshops.",
      "{O} runs {C} workshops.",
      "There are {C} workshops owned by {O}.",
    ),
    (
      _q("C", "How many workshops does {O} own?", "{O} owns {C} workshops."),
      _q(
        "C",
        "How many workshops are run by {O}?",
        "{C} workshops are run by {O}.",
      ),
    ),
  ),
  _Relation(
    "residents",
    ("L", "C"),
    (
      "{L} has {C} residents.",
      "About {C} people live in {L}.",
      "The population of {L} is {C}.",
    ),
    (
      _q("C", "How many people live in {L}?", "{C} people live in {L}."),
      _q(
        "C",
        "What is the population of {L}?",
        "The population of {L} is {C}.",
      ),
      _q("C", "How many residents does {L} have?", "{L} has {C} residents."),
    ),
  ),
  _Relation(
    "bridges",
    ("L", "C"),
    (
      "{L} has {C} bridges.",
      "There are {C} bridges in {L}.",
      "{L} is crossed by {C} bridges.",
    ),
    (
      _q("C", "How many bridges does {L} have?", "{L} has {C} bridges."),
      _q(
        "C",
        "How many bridges are there in {L}?",
        "There are {C} bridges in {L}.",
      ),
    ),
  ),
  _Relation(
    "invented",
    ("P", "W", "Y"),
    (
      "{P} invented the {W} in {Y}.",
      "The {W} was invented by {P} in {Y}.",
      "In {Y}, {P} designed the {W}.",
      "{P} created the {W} in {Y}.",
    ),
    (
      _q("W", "What did {P} invent?", "{P} invented the {W}."),
      _q(
        "W",
        "Which device was designed by {P}?",
        "The {W} was designed by {P}.",
      ),
      _q("W", "What device did {P} create?", "{P} created the {W}."),
      _q("P", "Who invented the {W}?", "{P} invented the {W}."),
      _q("P", "The {W} was designed by whom?", "The {W} was designed by {P}."),
      _q("Y", "When was the {W} invented?", "The {W} was invented in {Y}."),
      _q(
        "Y",
        "In what year did {P} create the {W}?",
        "{P} created the {W} in {Y}.",
      ),
    ),
  ),
  _Relation(
    "improved",
    ("P", "W", "Y"),
    (
      "{P} improved the {W} in {Y}.",
      "In {Y}, {P} refined the {W}.",
      "The {W} was improved by {P} in {Y}.",
    ),
    (
      _q("P", "Who improved the {W}?", "{P} improved the {W}."),
      _q("P", "Who refined the {W}?", "{P} refined the {W}."),
      _q("W", "Which device did {P} improve?", "{P} improved the {W}."),
      _q("Y", "When was the {W} improved?", "The {W} was improved in {Y}."),
    ),
  ),
  _Relation(
    "tested",
    ("P", "W", "Y"),
    (
      "{P} tested the {W} in {Y}.",
      "In {Y}, {P} tried out the {W}.",
      "The {W} was tested by {P} in {Y}.",
    ),
    (
      _q("P", "Who tested the {W}?", "{P} tested the {W}."),
      _q("P", "Who tried out the {W}?", "{P} tried out the {W}."),
      _q("W", "Which device did {P} try out?", "{P} tried out the {W}."),
      _q("Y", "When was the {W} tested?", "The {W} was tested in {Y}."),
    ),
  ),
  _Relation(
    "joined",
    ("P", "O", "Y"),
    (
      "{P} joined {O} in {Y}.",
      "In {Y}, {P} became a member of {O}.",
      "{O} was joined by {P} in {Y}.",
    ),
    (
      _q("P", "Who joined {O}?", "{P} joined {O}."),
      _q("P", "Who became a member of {O}?", "{P} became a member of {O}."),
      _q("Y", "When did {P} join {O}?", "{P} joined {O} in {Y}."),
      _q(
        "Y",
        "In what year did {P} become a member of {O}?",
        "{P} became a member of {O} in {Y}.",
      ),
      _q("O", "Which organization did {P} join?", "{P} joined {O}."),
    ),
  ),
  _Relation(
    "moved",
    ("P", "L", "Y"),
    (
      "{P} moved to {L} in {Y}.",
      "In {Y}, {P} settled in {L}.",
      "{P} settled in {L} in {Y}.",
    ),
    (
      _q("L", "Where did {P} move to?", "{P} moved to {L}."),
      _q(
        "L", "In which town did {P} settle?", "{P} settled in the town of {L}."
      ),
      _q("Y", "When did {P} move to {L}?", "{P} moved to {L} in {Y}."),
      _q(
        "Y", "In what year did {P} settle in {L}?", "{P} settled in {L} in {Y}."
      ),
      _q("P", "Who settled in {L}?", "{P} settled in {L}."),
    ),
  ),
  _Relation(
    "exhibition",
    ("O", "L", "Y"),
    (
      "In {Y}, {O} held an exhibition in {L}.",
      "{O} held an exhibition in {L} in {Y}.",
      "{O} showed its work in {L} in {Y}.",
    ),
    (
      _q(
        "L",
        "Where did {O} hold an exhibition?",
        "{O} held an exhibition in {L}.",
      ),
      _q(
        "L",
        "In which city did {O} show its work?",
        "{O} showed its work in the city of {L}.",
      ),
      _q(
        "Y",
        "When did {O} hold an exhibition?",
        "{O} held an exhibition in {Y}.",
      ),
      _q(
        "O",
        "Which organization held an exhibition in {L}?",
        "{O} held an exhibition in {L}.",
      ),
    ),
  ),
  _Relation(
    "patents",
    ("O", "C"),
    (
      "{O} holds {C} patents.",
      "{O} has been granted {C} patents.",
      "There are {C} patents held by {O}.",
    ),
    (
      _q("C", "How many patents does {O} hold?", "{O} holds {C} patents."),
      _q(
        "C",
        "How many patents have been granted to {O}?",
        "{C} patents have been granted to {O}.",
      ),
    ),
  ),
  _Relation(
    "schools",
    ("L", "C"),
    (
      "{L} has {C} schools.",
      "There are {C} schools in {L}.",
      "Children in {L} attend {C} schools.",
    ),
    (
      _q("C", "How many schools does {L} have?", "{L} has {C} schools."),
      _q(
        "C",
        "How many schools are there in {L}?",
        "There are {C} schools in {L}.",
      ),
    ),
  ),
)


@dataclasses.dataclass(frozen=True)
class Lexicon:
  """The invented words of the corpus, disjoint across entity types.

  Attributes:
    first_names: Capitalized given names.
    last_names: Capitalized family names.
    places: Capitalized place names.
    org_words: Capitalized organization names, followed by a kind such as
      `Guild`.
    org_kinds: The organization kinds.
    device_words: Lowercase device names, followed by a device noun such as
      `lamp`.
    device_nouns: The device nouns.
  """

  first_names: tuple[str, ...]
  last_names: tuple[str, ...]
  places: tuple[str, ...]
  org_words: tuple[str, ...]
  org_kinds: tuple[str, ...]
  device_words: tuple[str, ...]
  device_nouns: tuple[str, ...]


@functools.cache
def lexicon() -> Lexicon:
  """The corpus lexicon: invented words made of syllables, fixed seed."""
  rng = random.Random("a2d-synthetic-lexicon")
  onsets = ("b", "br", "d", "dr", "f", "g", "k", "l", "m", "n", "p", "r")
  onsets += ("s", "st", "t", "tr", "v", "z", "th", "sk")
  vowels = ("a", "e", "i", "o", "u", "ai", "ei")
  codas = ("", "", "n", "r", "l", "s", "m")
  endings = ("a", "o", "in", "en", "ar", "ic", "elle", "ov", "ith", "und")
  # Invented words must not be English words of the templates.
  taken = {
    w.lower()
    for relation in _RELATIONS
    for template in (
      *relation.sentences,
      *(q.text for q in relation.questions),
      *(q.statement for q in relation.questions),
    )
    for w in re.findall(
      r"[A-Za-z]+",
      string.Formatter().vformat(template, (), {s: "" for s, _ in _SLOT_TYPES}),
    )
  }
  taken.update(w.lower() for w in (*_ORG_KINDS, *_DEVICE_NOUNS))

  def words(count: int) -> tuple[str, ...]:
    out = []
    while len(out) < count:
      word = (
        rng.choice(onsets)
        + rng.choice(vowels)
        + rng.choice(codas)
        + rng.choice(onsets)
        + rng.choice(endings)
      )
      if word not in taken and len(word) <= 9:
        taken.add(word)
        out.append(word)
    return tuple(out)

  return Lexicon(
    first_names=tuple(w.capitalize() for w in words(40)),
    last_names=tuple(w.capitalize() for w in words(40)),
    places=tuple(w.capitalize() for w in words(60)),
    org_words=tuple(w.capitalize() for w in words(50)),
    org_kinds=_ORG_KINDS,
    device_words=words(40),
    device_nouns=_DEVICE_NOUNS,
  )


@dataclasses.dataclass(frozen=True, eq=False)
class _Fact:
  """One fact of a passage's world; facts compare by identity.

  Attributes:
    relation: The relation.
    values: (slot, entity text) pairs in the relation's slot order.
  """

  relation: _Relation
  values: tuple[tuple[str, str], ...]

  def value(self, slot: str) -> str:
    return next(v for s, v in self.values if s == slot)


@dataclasses.dataclass(frozen=True)
class _Asked:
  """One generated question: a fact, a template and its answer's offset."""

  fact: _Fact
  question: _Question
  answer: Answer


@dataclasses.dataclass(frozen=True)
class _Passage:
  """A generated passage: its text, every entity it states, its questions."""

  context: str
  entities: frozenset[str]
  asked: tuple[_Asked, ...]


@functools.cache
def _slots(template: str) -> tuple[str, ...]:
  """The slot names of a template, in order."""
  return tuple(
    name for _, name, _, _ in string.Formatter().parse(template) if name
  )


def _render(template: str, values: Mapping[str, str]) -> tuple[str, dict]:
  """Fills a template; returns the text and each slot's character offset."""
  parts: list[str] = []
  offsets: dict[str, int] = {}
  length = 0
  for literal, name, _, _ in string.Formatter().parse(template):
    parts.append(literal)
    length += len(literal)
    if name:
      offsets[name] = length
      parts.append(values[name])
      length += len(values[name])
  return "".join(parts), offsets


class _EntityPool:
  """Draws entities for one passage: no text and no name word twice."""

  def __init__(self, rng: random.Random, lex: Lexicon, used=()):
    self._rng = rng
    self._lex = lex
    self._used: set[str] = set(used)
    # Name words (not kinds such as `Guild`, not numbers) already in use.
    fixed = {*lex.org_kinds, *lex.device_nouns}
    self._keys: set[str] = {
      w
      for text in used
      for w in text.split()
      if w not in fixed and not w.isdigit()
    }

  def _candidate(self, kind: str) -> tuple[tuple[str, ...], str]:
    """A random entity of `kind`: its name words and its text."""
    rng, lex = self._rng, self._lex
    if kind == PERSON:
      first, last = rng.choice(lex.first_names), rng.choice(lex.last_names)
      return (first, last), f"{first} {last}"
    if kind == ORG:
      word = rng.choice(lex.org_words)
      return (word,), f"{word} {rng.choice(lex.org_kinds)}"
    if kind == PLACE:
      place = rng.choice(lex.places)
      return (place,), place
    if kind == DEVICE:
      word = rng.choice(lex.device_words)
      return (word,), f"{word} {rng.choice(lex.device_nouns)}"
    if kind == YEAR:
      return (), str(rng.randint(*_YEARS))
    if kind == COUNT:
      return (), str(rng.randint(*_COUNTS))
    raise ValueError(f"unknown entity type {kind!r}")

  def draw(self, kind: str) -> str:
    """A new entity of `kind` sharing no text or name word with earlier ones."""
    while True:
      keys, text = self._candidate(kind)
      if text not in self._used and not self._keys.intersection(keys):
        self._used.add(text)
        self._keys.update(keys)
        return text


def _slot_type(slot: str) -> str:
  return _SLOT_TYPE[slot]


def _relation(name: str) -> _Relation:
  return next(r for r in _RELATIONS if r.name == name)


def _fact(name: str, **values: str) -> _Fact:
  relation = _relation(name)
  return _Fact(relation, tuple((s, values[s]) for s in relation.slots))


def _fact_pool(rng: random.Random, pool: _EntityPool) -> list[_Fact]:
  """Every fact of a small invented world; a passage states some of them."""
  persons = [pool.draw(PERSON) for _ in range(3)]
  orgs = [pool.draw(ORG) for _ in range(rng.randint(2, 3))]
  places = [pool.draw(PLACE) for _ in range(rng.randint(3, 4))]
  devices = [pool.draw(DEVICE) for _ in range(3)]
  year, count = (lambda: pool.draw(YEAR)), (lambda: pool.draw(COUNT))
  facts = []
  for org in orgs:
    home, branch = rng.sample(places, 2)
    facts += [
      _fact("founded", P=rng.choice(persons), O=org, Y=year()),
      _fact("directed", P=rng.choice(persons), O=org, Y=year()),
      _fact("located", O=org, L=home),
      _fact("branch", O=org, L=branch, Y=year()),
      _fact("staff", O=org, C=count()),
      _fact("workshops", O=org, C=count()),
      _fact("joined", P=rng.choice(persons), O=org, Y=year()),
      _fact("exhibition", O=org, L=rng.choice(places), Y=year()),
      _fact("patents", O=org, C=count()),
    ]
  for person in persons:
    born, died = sorted((year(), year()))
    facts += [
      _fact("born", P=person, L=rng.choice(places), Y=born),
      _fact("died", P=person, L=rng.choice(places), Y=died),
      _fact("moved", P=person, L=rng.choice(places), Y=year()),
    ]
  for device in devices:
    facts += [
      _fact("invented", P=rng.choice(persons), W=device, Y=year()),
      _fact("improved", P=rng.choice(persons), W=device, Y=year()),
      _fact("tested", P=rng.choice(persons), W=device, Y=year()),
    ]
  for place in places:
    facts += [
      _fact("residents", L=place, C=count()),
      _fact("bridges", L=place, C=count()),
      _fact("schools", L=place, C=count()),
    ]
  return facts


def _given(fact: _Fact, question: _Question) -> tuple[str, ...]:
  """The entities a question about `fact` names, in question order.

  A tuple, not a set: iteration order feeds the generator's choices and must
  not depend on string hashing (PYTHONHASHSEED).
  """
  return tuple(dict.fromkeys(fact.value(s) for s in _slots(question.text)))


def _by_entity(facts: Sequence[_Fact]) -> dict[str, list[_Fact]]:
  """Entity text -> the facts that mention it."""
  index: dict[str, list[_Fact]] = {}
  for fact in facts:
    for _, value in fact.values:
      index.setdefault(value, []).append(fact)
  return index


def _distractors(
  fact: _Fact, question: _Question, by_entity: Mapping[str, list[_Fact]]
) -> dict[str, _Fact]:
  """Confusing distractors of a question among indexed facts.

  A confusing distractor is a value of the answer's type, other than the
  answer, in another fact that mentions one of the question's entities: the
  subject with a wrong relation, or the relation with a wrong object.

  Args:
    fact: The fact the question asks about.
    question: The question.
    by_entity: The candidate facts, indexed by `_by_entity`.

  Returns:
    Distractor value -> a fact that states it.
  """
  gold = fact.value(question.asked)
  kind = _slot_type(question.asked)
  found = {}
  for entity in _given(fact, question):
    for other in by_entity.get(entity, ()):
      if other is fact:
        continue
      for slot, value in other.values:
        if _SLOT_TYPE[slot] == kind and value != gold:
          found.setdefault(value, other)
  return found


def _answerable(
  fact: _Fact, question: _Question, by_entity: Mapping[str, list[_Fact]]
) -> bool:
  """Whether a question has one answer and enough confusing distractors.

  The answer is unique when no other fact of the relation agrees with the
  question's given entities; `_MIN_DISTRACTORS` distinct distractors are
  needed.

  Args:
    fact: The fact the question asks about.
    question: The question.
    by_entity: The facts of the passage (or world), indexed by `_by_entity`.
  """
  slots = _slots(question.text)
  if slots:
    candidates = by_entity.get(fact.value(slots[0]), ())
    same = [
      f
      for f in candidates
      if f.relation is fact.relation
      and all(f.value(s) == fact.value(s) for s in slots)
    ]
    if len(same) != 1:
      return False
  return len(_distractors(fact, question, by_entity)) >= _MIN_DISTRACTORS


def _plan(
  rng: random.Random, world: Sequence[_Fact], num_sentences: int, count: int
) -> tuple[list[_Fact], list[tuple[_Fact, _Question]]]:
  """Chooses the facts a passage states and the questions it asks.

  Questions are drawn first, cycling over answer types so that the mix of
  types does not follow whichever type has the most distractors; each brings
  its fact, `_MIN_DISTRACTORS` distractor facts and, where the world has one,
  a fact of the same relation about other entities into the passage. Random
  other facts fill the remaining sentences, and the order is shuffled.

  Returns:
    The stated facts in passage order and the (fact, question) targets that
    are answerable in them.
  """
  kinds = rng.sample([k for _, k in _SLOT_TYPES], len(_SLOT_TYPES))
  stated: list[_Fact] = []
  targets: list[tuple[_Fact, _Question]] = []
  world_index = _by_entity(world)
  answerable = [
    (f, q)
    for f in world
    for q in f.relation.questions
    if _answerable(f, q, world_index)
  ]
  for kind in kinds * 2:
    if len(targets) == count:
      break
    options = [
      (f, q)
      for f, q in answerable
      if _slot_type(q.asked) == kind
      and not any(f is tf and q.asked == tq.asked for tf, tq in targets)
    ]
    if not options:
      continue
    fact, question = rng.choice(options)
    pool = _distractors(fact, question, world_index)
    chosen = rng.sample(sorted(pool), _MIN_DISTRACTORS)
    # A fact of the same relation about other entities ("Marlo Tessen
    # founded Brivalle Works in 1871"), so that the question's relation words
    # point to more than one candidate.
    twins = [
      f
      for f in world
      if f.relation is fact.relation
      and f.value(question.asked) != fact.value(question.asked)
      and set(_given(f, question)).isdisjoint(_given(fact, question))
    ]
    new = [
      fact,
      *(pool[v] for v in chosen),
      *rng.sample(twins, min(1, len(twins))),
    ]
    new = [f for f in dict.fromkeys(new) if f not in stated]
    if len(stated) + len(new) > num_sentences:
      continue
    stated += new
    targets.append((fact, question))
  rest = [f for f in world if f not in stated]
  stated += rng.sample(rest, max(0, num_sentences - len(stated)))
  rng.shuffle(stated)
  stated_index = _by_entity(stated)
  return stated, [(f, q) for f, q in targets if _answerable(f, q, stated_index)]


def _passage(rng: random.Random, lex: Lexicon) -> _Passage:
  """One passage with 3 to 5 questions, each with confusing distractors."""
  for _ in range(_MAX_WORLDS):
    world = _fact_pool(rng, _EntityPool(rng, lex))
    facts, targets = _plan(rng, world, rng.randint(10, 14), rng.randint(3, 5))
    if len(targets) >= 3:
      break
  else:
    raise RuntimeError(f"no passage with 3 questions in {_MAX_WORLDS} worlds")
  sentences, slot_starts, offset = [], {}, 0
  for fact in facts:
    template = rng.choice(fact.relation.sentences)
    text, starts = _render(template, dict(fact.values))
    sentences.append(text)
    slot_starts[fact] = {s: offset + i for s, i in starts.items()}
    offset += len(text) + 1
  asked = tuple(
    _Asked(
      fact,
      question,
      Answer(fact.value(question.asked), slot_starts[fact][question.asked]),
    )
    for fact, question in sorted(targets, key=lambda t: facts.index(t[0]))
  )
  return _Passage(
    context=" ".join(sentences),
    entities=frozenset(v for f in facts for _, v in f.values),
    asked=asked,
  )


def _question_text(asked: _Asked) -> str:
  return _render(asked.question.text, dict(asked.fact.values))[0]


def _records(split: str, passages: Sequence[_Passage]) -> list[Record]:
  return [
    Record(
      id=f"{split}_{p:05d}_{q}",
      # One title per passage, so SQuAD files list passages in order.
      title=f"{split}_{p:05d}",
      context=passage.context,
      question=_question_text(asked),
      answers=(asked.answer,),
    )
    for p, passage in enumerate(passages)
    for q, asked in enumerate(passage.asked)
  ]


def _addsent(
  rng: random.Random, lex: Lexicon, passage: _Passage, asked: _Asked
) -> str:
  """The question restated with invented entities and a fake answer."""
  pool = _EntityPool(rng, lex, used=passage.entities)
  statement = asked.question.statement
  values = {s: pool.draw(_slot_type(s)) for s in _slots(statement)}
  return _render(statement, values)[0]


def _adversarial(
  rng: random.Random, lex: Lexicon, passages: Sequence[_Passage]
) -> list[Record]:
  originals = _records("dev", passages)
  records, n = [], 0
  for passage in passages:
    variants = []
    for asked in passage.asked:
      original = originals[n]
      n += 1
      records.append(original)
      sentence = _addsent(rng, lex, passage, asked)
      variants.append(
        dataclasses.replace(
          original,
          id=original.id + ADVERSARIAL_SUFFIX,
          context=f"{passage.context} {sentence}",
        )
      )
    records.extend(variants)
  return records


def generate_corpus(
  num_train: int, num_dev: int, seed: int
) -> dict[str, list[Record]]:
  """Generates the synthetic corpus.

  Args:
    num_train: Number of training passages (3 to 5 questions each).
    num_dev: Number of dev passages.
    seed: Generator seed; the same arguments give the same corpus.

  Returns:
    `train`, `dev` and `adversarial` record lists. The adversarial split
    holds every dev question and, right after each passage's questions, one
    AddSent-style variant per question with id `<dev id>-addsent`.
  """
  for name, value in (("num_train", num_train), ("num_dev", num_dev)):
    if not isinstance(value, int) or value < 0:
      raise ValueError(f"{name} must be an int >= 0, got {value!r}")
  lex = lexicon()

  def passages(split: str, count: int) -> list[_Passage]:
    rng = random.Random(f"a2d-synthetic/{seed}/{split}")
    return [_passage(rng, lex) for _ in range(count)]

  dev = passages("dev", num_dev)
  adversarial_rng = random.Random(f"a2d-synthetic/{seed}/adversarial")
  return {
    "train": _records("train", passages("train", num_train)),
    "dev": _records("dev", dev),
    "adversarial": _adversarial(adversarial_rng, lex, dev),
  }


def write_corpus(
  out_dir: str, num_train: int, num_dev: int, seed: int
) -> dict[str, str]:
  """Generates the corpus and writes it as SQuAD v1.1 JSON files.

  Args:
    out_dir: Local or `gs://` directory; created if missing.
    num_train: Number of training passages.
    num_dev: Number of dev passages.
    seed: Generator seed.

  Returns:
    Split name -> path of `train.json`, `dev.json` and `adversarial.json`.
  """
  # Imported here: generation is pure Python, and only writing needs the
  # TensorFlow file system behind `squad`.
  from a2d_tf.data import squad

  paths = {}
  for split, records in generate_corpus(num_train, num_dev, seed).items():
    paths[split] = os.path.join(out_dir, f"{split}.json")
    squad.write_squad_json(records, paths[split])
  return paths


# The tokens `Mention.first_token` and `.last_token` count.
TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")


@dataclasses.dataclass(frozen=True)
class Mention:
  """An entity mention found in a text.

  Attributes:
    kind: Entity type (`PERSON`, `ORG`, `PLACE`, `YEAR`, `COUNT`, `DEVICE`).
    text: The mention text, `text[start:end]` of the searched string.
    start: Character offset of the first character.
    end: Character offset one past the last character.
    first_token: Index of the mention's first token (`\\w+` or one
      punctuation character).
    last_token: Index of its last token.
  """

  kind: str
  text: str
  start: int
  end: int
  first_token: int
  last_token: int


def entity_mentions(text: str) -> list[Mention]:
  """Finds the corpus' entities in a text by their lexicon and shape.

  Years are four-digit numbers and counts shorter numbers; people,
  organizations and devices are two-word names, places one word.

  Args:
    text: A passage or question of the synthetic corpus.

  Returns:
    Mentions in text order.
  """
  lex = lexicon()
  pairs = (
    (PERSON, set(lex.first_names), set(lex.last_names)),
    (ORG, set(lex.org_words), set(lex.org_kinds)),
    (DEVICE, set(lex.device_words), set(lex.device_nouns)),
  )
  places = set(lex.places)
  tokens = list(TOKEN_PATTERN.finditer(text))
  mentions, i = [], 0
  while i < len(tokens):
    word = tokens[i].group()
    after = tokens[i + 1].group() if i + 1 < len(tokens) else ""
    found = None
    for kind, heads, tails in pairs:
      if word in heads and after in tails:
        found = (kind, i + 1)
    if found is None and word in places:
      found = (PLACE, i)
    if found is None and word.isdigit():
      found = (YEAR if len(word) == 4 else COUNT, i)
    if found is None:
      i += 1
      continue
    kind, last = found
    start, end = tokens[i].start(), tokens[last].end()
    mentions.append(Mention(kind, text[start:end], start, end, i, last))
    i = last + 1
  return mentions
