"""What the model sees: input text, cues (fast search == plain regexes), the featurizer's
determinism, bounded cache, pickling and explanations."""

from __future__ import annotations

import pickle
import random
import re

import numpy as np
import pytest

from supportcli import cues, features, hashing
from supportcli.cues import (
    AUTOMATED_MARK,
    CUE_FEATURE_NAMES,
    CUE_NAMES,
    CUES,
    URGENT_CUES,
    cue_hits,
    cue_matrix,
    urgent_cues,
)
from supportcli.features import CueFeatures, TextFeatures, to_text

CUE_EXAMPLES = {
    "chargeback or payment dispute": [
        "I will file a chargeback with my bank today.",
        "Ich habe eine Rückbuchung bei meiner Bank veranlasst.",
        "J'ai fait une opposition bancaire sur ce paiement.",
        "Voy a pedir un contracargo a mi banco.",
    ],
    "legal threat": [
        "My lawyer will be in touch.",
        "Mein Anwalt wird sich bei Ihnen melden.",
        "Je vais contacter mon avocat.",
        "Mi abogado se pondrá en contacto.",
    ],
    "fraud or unauthorised charge": [
        "There is an unauthorized charge on my card.",
        "Das ist Betrug, ich habe nichts bestellt.",
        "C'est une fraude, je n'ai rien commandé.",
        "No autoricé este cargo.",
    ],
    "safety problem": [
        "My son had an allergic reaction to the cream.",
        "Mein Kind musste ins Krankenhaus.",
        "Ma fille est aux urgences.",
        "Tengo alergia al producto.",
    ],
    "deadline within a day": [
        "I need it by tomorrow for the party.",
        "Ich brauche das Paket bis morgen.",
        "C'est pour demain matin.",
        "Lo necesito para mañana.",
    ],
    "public review threat": [
        "I will leave a bad review everywhere.",
        "Sie bekommen eine schlechte Bewertung.",
        "Je vais laisser un avis très négatif.",
        "Voy a escribir una reseña negativa.",
    ],
    "repeated follow-up": [
        "This is my third email about this.",
        "Ich warte immer noch auf eine Antwort.",
        "Toujours pas de réponse de votre part.",
        "Todavía no he recibido nada.",
    ],
    "anger": [
        "This is completely unacceptable.",
        "Das ist unverschämt.",
        "C'est inadmissible.",
        "Es inaceptable.",
    ],
    "money already taken": [
        "I was charged twice for one order.",
        "Wann bekomme ich meine Erstattung?",
        "Merci de me rembourser la commande.",
        "Quiero un reembolso.",
    ],
}
NEUTRAL = "Hello, could you tell me which colours the linen shirt comes in? Thanks, Anna"


def test_to_text_uses_subject_and_new_text_and_marks_automated_mail() -> None:
    assert to_text(" Where is it? ", "  New text ", "> old quote") == "Where is it?\nNew text"
    assert to_text("Re: x", "", "quoted only") == "Re: x\nquoted only"
    assert to_text("Out of office", "Back Monday", automated="auto-reply").endswith(
        "\n" + AUTOMATED_MARK
    )


@pytest.mark.parametrize(
    ("cue", "text"), [(cue, text) for cue, texts in CUE_EXAMPLES.items() for text in texts]
)
def test_each_cue_is_found_in_four_languages(cue: str, text: str) -> None:
    assert cue in cue_hits(f"Subject\n{text}")


def test_neutral_text_has_no_cues() -> None:
    assert cue_hits(NEUTRAL) == ()
    assert not cue_matrix([NEUTRAL]).any()


def test_urgent_cues_are_the_urgent_ones_and_never_for_automated_mail() -> None:
    text = "Refund?\nThis is unacceptable. I will file a chargeback and call my lawyer."
    assert set(cue_hits(text)) == {"money already taken", "anger",
                                   "chargeback or payment dispute", "legal threat"}  # fmt: skip
    assert urgent_cues(text) == ("chargeback or payment dispute", "legal threat")
    assert set(urgent_cues(text)) <= URGENT_CUES
    assert urgent_cues(f"{text}\n{AUTOMATED_MARK}") == ()
    assert cues.urgent_cues_from(cue_matrix([text, f"{text}\n{AUTOMATED_MARK}"])) == [
        ("chargeback or payment dispute", "legal threat"), ()]


def test_order_automated_and_shouting_columns() -> None:
    order, automated, caps = (CUE_FEATURE_NAMES.index(f"cue: {n}") for n in (
        "mentions an order", "automated mail", "shouting (capitals)"))  # fmt: skip
    rows = cue_matrix([
        "Status of #10234 please",
        f"Delivery report\n{AUTOMATED_MARK}",
        "WHERE IS MY PARCEL, I PAID THREE WEEKS AGO AND NOTHING HAPPENED",
        "WHERE IS IT",  # too few letters to call it shouting
        "Wo ist meine Bestellung?",
    ])
    assert rows[:, order].tolist() == [True, False, False, False, True]
    assert rows[:, automated].tolist() == [False, True, False, False, False]
    assert rows[:, caps].tolist() == [False, False, True, False, False]


@pytest.mark.parametrize(("text", "shouting"), [
    ("ΠΟΥ ΕΙΝΑΙ Η ΠΑΡΑΓΓΕΛΙΑ ΜΟΥ ΠΕΡΙΜΕΝΩ ΤΡΕΙΣ ΕΒΔΟΜΑΔΕΣ", True),  # Greek: in the table
    ("ГДЕ МОЙ ЗАКАЗ Я ЖДУ УЖЕ ТРИ НЕДЕЛИ И НИЧЕГО", True),  # Cyrillic: in the table
    ("ＷＨＥＲＥ ＩＳ ＭＹ ＰＡＲＣＥＬ ＩＴ ＩＳ ＬＡＴＥ ＡＧＡＩＮ", True),  # fullwidth: beyond
    ("𐐀𐐁𐐂𐐃𐐄𐐅𐐆𐐇𐐈𐐉𐐊𐐋𐐌𐐍𐐎𐐏𐐐𐐑𐐒𐐓𐐔𐐕", True),  # Deseret capitals: astral
    ("我的订单在哪里我已经等了三个星期了还没有收到任何消息", False),  # letters without case
    ("ＷＨＥＲＥ is my parcel it is late again and again", False),  # mostly lower case
])
def test_shouting_counts_capitals_of_every_script(text: str, shouting: bool) -> None:
    caps = CUE_FEATURE_NAMES.index("cue: shouting (capitals)")
    assert bool(cue_matrix([text, "ok"])[0, caps]) == _reference_cues(text)[caps] == shouting


def test_token_masks_equal_the_one_token_definition() -> None:
    """The numpy search for tokens that may hold a trigger misses none: every trigger word in
    every place of a token, next to letters beyond ASCII, and tokens without any."""
    rng = random.Random(9)
    triggers = [trigger for trigger, _ in cues._alternatives()[1]]
    assert any(len(t) == 2 for t in triggers) and any(not t[:3].isascii() for t in triggers)
    tokens = [*triggers, "", "b", "y", "xby", "bye", "ø", "é" * 4, "straße", "日本語"]
    for trigger in triggers:
        for before, after in (("x", ""), ("", "s"), ("é", "ø"), ("a-", "'s")):
            tokens.append(f"{before}{trigger}{after}")
        tokens.append(trigger[:-1])  # one character short of it
    letters = "abcdeinorstuyé-'"
    tokens += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) for _ in range(500)]
    expected = [cues.token_mask(t) for t in tokens]
    assert sum(m != 0 for m in expected) > len(triggers)
    assert cues.token_masks(tokens) == expected
    ascii_only = [t for t in tokens if t.isascii()]
    assert cues.token_masks(ascii_only) == [cues.token_mask(t) for t in ascii_only]
    assert cues.token_masks([]) == []


def _reference_cues(text: str) -> list[bool]:
    """The cue block computed the slow, obvious way: each regex over the whole text."""
    row = [bool(pattern.search(text)) for _, pattern, _ in CUES]
    row.append(bool(re.search("|".join(cues._ORDER_SPEC), text, re.IGNORECASE)))
    row.append(AUTOMATED_MARK in text)
    letters = [ch for ch in text[:1500] if ch.isalpha()]
    caps = sum(ch.isupper() for ch in letters) / len(letters) if len(letters) > 20 else 0.0
    row.append(caps > 0.6)
    return row


def _random_texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    phrases = [t for texts in CUE_EXAMPLES.values() for t in texts] + [
        NEUTRAL, "order", "Order #12345", "#9999", "it's tomorrow", "no one has replied",
        "follow-up", "charge back", "!!", "ÜBER", "ships today", "1-star review",
        "post this on", "didn't make this", "account has been hacked", "a", "tomorrow",
        "by", "no body got back", "within 24h", "lastschrift ging zurück",
    ]  # fmt: skip
    out = []
    for _ in range(n):
        words = [rng.choice(phrases) for _ in range(rng.randint(1, 6))]
        text = " ".join(w.upper() if rng.random() < 0.2 else w for w in words)
        out.append(text)
    return out


def test_fast_cue_search_equals_the_plain_regexes() -> None:
    texts = _random_texts(400) + [t for ts in CUE_EXAMPLES.values() for t in ts] + [NEUTRAL, ""]
    fast = cue_matrix(texts)
    slow = np.array([_reference_cues(t) for t in texts])
    mismatched = [texts[i] for i in np.flatnonzero((fast != slow).any(axis=1))]
    assert mismatched == []
    assert fast[:, : len(CUE_NAMES)].any(axis=0).all()  # every cue occurs somewhere


def test_cue_features_transformer_is_the_cue_block_times_weight() -> None:
    texts = _random_texts(20)
    block = CueFeatures(weight=0.5).fit(texts).transform(texts).toarray()
    assert np.array_equal(block, cue_matrix(texts) * 0.5)
    assert list(CueFeatures().get_feature_names_out()) == list(CUE_FEATURE_NAMES)


CORPUS = [
    "Where is my order #10234? It was supposed to ship on Monday.",
    "Refund please: the mug arrived broken, photos attached.",
    "Ich habe eine Rückbuchung veranlasst, das Paket kam nie an!",
    "Bonjour, ma commande n'est toujours pas arrivée. Merci de me rembourser.",
    "Hola, quiero cancelar mi pedido 5531 antes del envío.",
    "Can I change the delivery address for order 77812?",
    "Wholesale inquiry: we run three cafés and would like your price list.",
    "Your invoice INV-2231 is attached. Thanks for your business.",
    "Password reset link does not work, I cannot log in.",
    "THIS IS THE THIRD TIME I WRITE!! NOBODY ANSWERS MY EMAILS",
]


def _fitted(texts: list[str] = CORPUS, **params: object) -> TextFeatures:
    return TextFeatures(min_df_chars=1, **params).fit(texts)  # type: ignore[arg-type]


def _same(a: object, b: object) -> bool:
    return bool((a != b).nnz == 0) and a.shape == b.shape  # type: ignore[attr-defined]


def test_a_loaded_model_starts_from_its_stored_words_and_computes_the_same() -> None:
    texts = [*CORPUS, "Chargeback filed, my lawyer says: legal action. Straße, naïve, 日本"] * 2
    labels = np.array(["a", "b"] * (len(texts) // 2))
    fitted = TextFeatures(min_df_chars=1).fit(texts, labels)
    stored = fitted.token_table_
    assert stored is not None and "chargeback" in stored["tokens"] and stored["masks"]
    loaded = pickle.loads(pickle.dumps(fitted))
    unseeded = pickle.loads(pickle.dumps(fitted))
    unseeded.token_table_ = None  # as a model saved before the table: every token hashed anew
    new = ["Never seen: zyxwv quokka #55123, chargeback again", texts[-1], "", "日本 straße"]
    x = loaded.transform(new + texts)
    assert _same(x, unseeded.transform(new + texts))
    table = loaded._table()
    assert len(table.index) == len(stored["tokens"]) + len({"never", "seen", "zyxwv", "quokka",
                                                            "55123", "again"})
    loaded._forget(("_words",))
    assert len(loaded._table().index) == len(stored["tokens"])
    loaded.transform(texts)  # the words it was trained on: none to hash
    assert len(loaded._table().index) == len(stored["tokens"])


def test_the_stored_words_are_those_of_most_texts_and_never_of_one_text_only() -> None:
    texts = ["refund order late late late", "refund order please", "refund late 0170 555"]
    def stored(limit: int) -> list[str]:
        fitted = TextFeatures(min_df_chars=1, stored_words=limit).fit(texts, ["a", "b", "a"])
        assert fitted.token_table_ is not None
        assert len(fitted.token_table_["lens"]) == len(fitted.token_table_["tokens"])
        return list(fitted.token_table_["tokens"])
    # refund in 3 texts; order and late in 2 (a tie: the word met first); please, 0170 in 1
    assert stored(2) == ["refund", "order"]
    assert stored(10) == ["refund", "order", "late"]


def test_two_fits_give_the_same_features_and_matrix() -> None:
    one, two = _fitted(), _fitted()
    assert np.array_equal(one.vocabulary_keys_, two.vocabulary_keys_)
    assert np.array_equal(one.idf_, two.idf_)
    x1, x2 = one.transform(CORPUS), two.transform(CORPUS)
    assert np.array_equal(x1.indices, x2.indices) and np.array_equal(x1.data, x2.data)
    assert _same(TextFeatures(min_df_chars=1).fit_transform(CORPUS), x1)


def test_matrix_does_not_depend_on_the_cache_or_on_batching() -> None:
    fitted = _fitted()
    reference = fitted.transform(CORPUS)
    fitted.transform([*reversed(CORPUS), "unseen words zebra quokka"])  # warm, reordered
    assert _same(fitted.transform(CORPUS), reference)
    one_by_one = [fitted.transform([t]) for t in CORPUS]
    assert all(_same(row, reference[i]) for i, row in enumerate(one_by_one))
    fitted.CHUNK = 3  # several chunks per call
    assert _same(fitted.transform(CORPUS), reference)


def test_blocks_are_normalised_and_weighted() -> None:
    fitted = _fitted(word_weight=1.0, char_weight=2.0, cue_weight=0.5)
    x = fitted.transform(CORPUS).toarray()
    for block, expected in ((0, 1.0), (1, 2.0)):
        norms = np.linalg.norm(x[:, fitted.block_ == block], axis=1)
        assert np.allclose(norms, expected)
    cues = x[:, fitted.block_ == 2]
    assert set(np.unique(cues)) <= {0.0, 0.5}
    assert np.array_equal(cues > 0, cue_matrix(CORPUS))


def test_unseen_words_and_empty_texts() -> None:
    fitted = _fitted()
    x = fitted.transform(["", "qqqq zzzz", CORPUS[0]])
    assert x.shape == (3, fitted.n_features_out_)
    assert x[0].nnz == 0 and x[1].nnz == 0 and x[2].nnz > 0
    assert fitted.transform([]).shape == (0, fitted.n_features_out_)


def test_cache_stays_bounded_and_results_do_not_change() -> None:
    texts = [f"{t} token{i} other{i * 7}" for i, t in enumerate(CORPUS * 30)]
    bounded = TextFeatures(min_df_chars=1, max_cached_words=50).fit(texts)
    reference = TextFeatures(min_df_chars=1).fit(texts).transform(texts)
    for start in range(0, len(texts), 20):
        part = bounded.transform(texts[start : start + 20])
        assert _same(part, reference[start : start + 20])
        assert len(bounded._table().chunks) <= 50 + 20 * 20  # reset before it grows further


def test_pickle_drops_the_cache_and_keeps_the_results() -> None:
    fitted = _fitted()
    before = fitted.transform(CORPUS)
    state = fitted.__getstate__()
    assert "_words" not in state and "_index" not in state
    loaded = pickle.loads(pickle.dumps(fitted))
    assert _same(loaded.transform(CORPUS), before)


def test_explanations_name_every_column_from_the_text() -> None:
    fitted = _fitted()
    text = "Ich habe eine Rückbuchung veranlasst, das Paket kam nie an!"
    row = fitted.transform([text])
    names = fitted.explain(text)
    assert set(names) == set(row.indices.tolist())
    lowered = text.lower()
    for name in names.values():
        for part in name.split(" / "):
            kind, _, value = part.partition(" '")
            value = value.rstrip("'")
            if kind == "word":
                assert re.search(rf"\b{re.escape(value)}\b", lowered)
            elif kind == "chars":
                assert value.strip() in lowered
            elif kind == "words":
                assert all(w in lowered for w in value.split())
            else:
                assert part in CUE_FEATURE_NAMES
    assert "chars 'ückb'" in " / ".join(names.values())  # character n-grams of German words
    assert "cue: chargeback or payment dispute" in names.values()


def test_schema_one_analyzer_still_available_for_old_models() -> None:
    grams = features.subword_ngrams("Hi Rückbuchung")
    assert " hi " in grams and "ückb" in grams


# -- short views of a sample ------------------------------------------------------------------


def test_short_views_are_the_opening_and_the_subject_without_greeting() -> None:
    from factories import message

    long = message(
        subject="Membership fee question",
        text="Hi there,\nWhen is the yearly club fee due? I paid last March. Also, can I pay "
        "by PayPal this time? My partner usually handles it but is away.\nThanks, Ann",
    )
    assert features.short_views(long) == [
        "\nWhen is the yearly club fee due? I paid last March.",
        "Membership fee question\n",
    ]
    no_greeting = message(subject="", text="Hi I need a refund for the mug that broke")
    assert features.short_views(no_greeting) == []  # "Hi I need …" is the request itself
    short = message(subject="", text="Is the hood detachable?")
    assert features.short_views(short) == []  # the one view would be the whole text again
    automated = message(subject="Out of office until Monday", text="I am away.")
    automated = type(automated)(**{**_fields(automated), "automated": "auto-reply"})
    assert all(v.endswith(AUTOMATED_MARK) for v in features.short_views(automated))


def _fields(m: object) -> dict[str, object]:
    from dataclasses import fields

    return {f.name: getattr(m, f.name) for f in fields(m)}  # type: ignore[arg-type]


# -- hashing many tokens at once ----------------------------------------------------------------


def test_murmur_of_byte_strings_of_any_length_equals_scikit_learn() -> None:
    from sklearn.utils import murmurhash3_32

    rng = np.random.default_rng(7)
    items = [bytes(rng.integers(0, 256, size=int(n), dtype=np.uint8)) for n in range(0, 90)]
    items += [bytes(rng.integers(0, 256, size=13, dtype=np.uint8)) for _ in range(200)]
    items += ["straße".encode(), "日本語の注文".encode(), b"order", b"\0\0", b"", b"y" * 300]
    rng.shuffle(items)  # type: ignore[arg-type]
    lens = np.array([len(item) for item in items])
    buf = np.frombuffer(b"".join(items), np.uint8)
    for seed in (hashing.SEED, 0, 2**32 - 1):
        expected = [murmurhash3_32(item, seed=seed, positive=True) for item in items]
        hashed = hashing.murmur3_slices(buf, np.cumsum(lens) - lens, lens, seed)
        assert hashed.tolist() == expected
    none = np.zeros(0, np.int64)
    assert hashing.murmur3_slices(buf[:0], none, none, hashing.SEED).tolist() == []


def test_tokens_hashed_together_get_the_keys_of_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(3)
    alphabet = "abcxyz019'-_é"
    tokens = ["a", "q-", "it's", "order10234", "straße", "café", "x" * 40, "日本語の注文"]
    tokens += ["chargeback", "rückbuchung", "hôpital", "maybe", "tomorrow's", "rechargeable"]
    tokens += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    tokens = [t for t in tokens if re.fullmatch(r"\w[\w'-]*", t)]
    tokens = list(dict.fromkeys(tokens))

    def one_by_one(infos: hashing.Infos) -> list[tuple[int, int, list[int]]]:
        spans = zip(infos.starts.tolist(), infos.lens.tolist(), strict=True)
        keys = [infos.keys[s : s + n].tolist() for s, n in spans]
        return list(zip(infos.hashes.tolist(), infos.masks, keys, strict=True))

    def expected(tokens: list[str]) -> list[tuple[int, int, list[int]]]:
        return [(h, m, k.tolist()) for h, m, k in map(hashing.token_info, tokens)]

    store = hashing.InfoStore(capacity=10)
    assert one_by_one(hashing.new_infos(tokens)) == expected(tokens)
    assert sum(m != 0 for m in hashing.new_infos(tokens).masks) >= 5  # cue triggers
    fresh = [f"fresh{i}" for i in range(5)]
    assert one_by_one(store.infos(fresh)) == expected(fresh)
    assert set(store.ids) == set(fresh)
    hashed: list[str] = []
    new_infos = hashing.new_infos
    monkeypatch.setattr(hashing, "new_infos", lambda t: hashed.extend(t) or new_infos(t))
    mixed = fresh[:3] + [f"more{i}" for i in range(6)]  # known and new: the store overflows
    assert one_by_one(store.infos(mixed)) == expected(mixed)
    assert set(store.ids) == set(mixed)  # it started again with this batch
    assert hashed == mixed[3:]  # the known ones were kept, not hashed again
    again = [*(f"more{i}" for i in reversed(range(6))), "x"]  # known ones in another order
    assert one_by_one(store.infos(again)) == expected(again)
    many = [f"many{i}" for i in range(25)]  # more new tokens than the store holds
    assert one_by_one(store.infos(many)) == expected(many)
    assert list(store.ids) == many[:10]  # it keeps the first ones
    twice = ["order", "many3", "order", "new", "many3"]  # repeated tokens, known and new
    assert one_by_one(store.infos(twice)) == expected(twice)
    assert one_by_one(hashing.InfoStore(capacity=2).infos(twice)) == expected(twice)
    big = hashing.InfoStore(capacity=5000)
    for start in range(0, 3000, 250):  # grows many times: earlier keys stay where they were
        batch = [f"w{i}x" for i in range(start, start + 250)] + ["a", "order"]
        assert one_by_one(big.infos(batch)) == expected(batch)


def test_key_index_finds_every_key_and_only_those() -> None:
    rng = random.Random(5)
    tags = [hashing.WORD_TAG, hashing.CHAR_TAG, 3 << 32]
    spread = [rng.choice(tags) | rng.getrandbits(32) for _ in range(5000)]
    # crowd one bucket: 300 keys of one tag whose hashes share their top 12 bits
    crowded = [hashing.CHAR_TAG | 0xABC << 20 | rng.getrandbits(20) for _ in range(300)]
    edges = [hashing.WORD_TAG, hashing.WORD_TAG | 0xFFFFFFFF, (3 << 32) | 0xFFFFFFFF]
    keys = np.array(sorted(set(spread + crowded + edges)), np.uint64)
    absent = np.array(sorted({rng.choice([0, 5 << 32, *tags]) | rng.getrandbits(32)
                              for _ in range(3000)} - set(keys.tolist())), np.uint64)
    for order in (np.arange(len(keys)), np.random.default_rng(5).permutation(len(keys))):
        index = hashing.KeyIndex(keys[order])  # a vocabulary comes sorted; any order works
        assert index.get(keys[order]).tolist() == list(range(len(keys)))
        assert (index.get(absent) == -1).all()
        both = np.concatenate((absent[:50], keys[order][::-1]))
        assert index.get(both).tolist() == [-1] * 50 + list(range(len(keys)))[::-1]
    assert hashing.KeyIndex(keys[:0]).get(keys[:3]).tolist() == [-1, -1, -1]
    assert hashing.KeyIndex(keys[:1]).get(keys[:3]).tolist() == [0, -1, -1]
    with pytest.raises(ValueError, match="too many tags"):  # said at once, nothing allocated
        hashing.KeyIndex(np.array([1, 2**64 - 1], np.uint64))


@pytest.mark.parametrize("extra", [[], ["\ua66e"], ["a\ua66eb,c"], ["x-\ua66e"]])
def test_chunks_split_in_one_pass_give_the_tokens_of_each(extra: list[str]) -> None:
    rng = random.Random(11)
    alphabet = "ab1_'-,.!é?"
    chunks = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(200)]
    chunks = [*chunks, *extra, "", "--", "it's", "order#10234"]
    flat, lens = features._split_chunks(chunks)
    each = [re.findall(r"\w[\w'-]*", c) for c in chunks]
    assert lens.tolist() == [len(tokens) for tokens in each]
    assert flat == [t for tokens in each for t in tokens]
    none, no_lens = features._split_chunks([])
    assert none == [] and len(no_lens) == 0


def test_token_table_gives_the_tokens_of_every_chunk_fresh_partly_new_and_known() -> None:
    rng = random.Random(12)
    alphabet = "ab1_'-,.!é²½ß"  # ² ½: \w (numeric) as isalnum says; plain chunks skip the regex
    def chunks(n: int) -> list[str]:
        return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(n)]
    first, more = chunks(300), chunks(60)
    words = features._Words(lambda keys: np.full(len(keys), -1, np.int64))
    for batch in (first, first[:200] + more, more + first):  # fresh, a few new, all known
        tids, lens = words.lookup(batch)
        by_id = list(words.index)
        each = [re.findall(r"\w[\w'-]*", c) for c in batch]
        assert lens.tolist() == [len(tokens) for tokens in each]
        assert [by_id[t] for t in tids.tolist()] == [t for tokens in each for t in tokens]


def test_lone_surrogates_and_astral_characters_are_featurized() -> None:
    texts = ["bad byte caf\udce9 order 😀 ok", "plain order text", "caf\udce9 again 😀😀"]
    fitted = _fitted(texts)
    x = fitted.transform(texts)
    assert x.shape[0] == 3 and x[0].nnz > 0
    again = pickle.loads(pickle.dumps(fitted)).transform(texts[::-1])
    assert _same(again, x[::-1])
    assert fitted.explain(texts[0])
