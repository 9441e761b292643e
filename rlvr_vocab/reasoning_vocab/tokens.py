"""The vocabulary's id mapping and token maths: reasoning id <-> base id, base text, the think span, usage shares."""

import dataclasses
import functools
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from transformers.convert_slow_tokenizer import bytes_to_unicode

from rlvr_vocab.core.errors import ConfigError
from rlvr_vocab.reasoning_vocab.config import WHERE

THINK_START, THINK_END = "<think>", "</think>"
SHARE_KEYS = ("share", "share_in_think", "share_outside_think")


@dataclass
class ReasoningVocab:
    """The mapping: reasoning id `first_id + i` mirrors base id `base_ids[i]`."""

    base_ids: list[int]
    first_id: int
    mode: str = "free"
    selection: str = "first_regular"

    @property
    def size(self) -> int:
        return len(self.base_ids)

    @property
    def reasoning_ids(self) -> range:
        return range(self.first_id, self.first_id + self.size)

    def is_reasoning(self, token_id: int) -> bool:
        return self.first_id <= token_id < self.first_id + self.size

    def to_base_ids(self, ids: Iterable[int]) -> list[int]:
        return [self.base_ids[i - self.first_id] if self.is_reasoning(i) else i for i in _ids(ids)]

    def decode_to_base(self, ids: Iterable[int], tokenizer, skip_special_tokens: bool = False) -> str:
        """The text of `ids` with each reasoning token written as its base token."""
        return tokenizer.decode(self.to_base_ids(ids), skip_special_tokens=skip_special_tokens)

    def mark(self, ids: Iterable[int], tokenizer) -> str:
        """Raw text with each run of reasoning tokens shown as ⟨its base text⟩, for logging completions.

        On a byte-level vocabulary (Qwen's) one character may span several tokens: a character with any byte from a
        reasoning token is marked whole, so the text without the marks is exactly the decoded base text.
        """
        ids = _ids(ids)
        pieces = _token_bytes(tokenizer.convert_ids_to_tokens(self.to_base_ids(ids)))
        if pieces is None:  # not byte-level: each run decoded on its own
            parts = []
            for reasoning, run in itertools.groupby(ids, key=self.is_reasoning):
                text = self.decode_to_base(list(run), tokenizer)
                parts.append(f"⟨{text}⟩" if reasoning else text)
            return "".join(parts)
        data = b"".join(pieces)
        flags = [self.is_reasoning(i) for i, piece in zip(ids, pieces, strict=True) for _ in piece]
        out, inside, at = [], False, 0
        while at < len(data):
            n = _utf8_length(data[at])
            try:
                char = data[at:at + n].decode("utf-8")
            except UnicodeDecodeError:
                char, n = "\ufffd", 1
            reasoning = any(flags[at:at + n])
            if reasoning != inside:
                out.append("⟨" if reasoning else "⟩")
                inside = reasoning
            out.append(char)
            at += n
        return "".join(out) + ("⟩" if inside else "")

    def token_counts(
        self,
        completion_ids: Sequence[Sequence[int]],
        think_start_id: int,
        think_end_id: int,
        prompt_ids: Sequence[Sequence[int]] | None = None,
    ) -> list[int]:
        """[reasoning, all] token counts overall, inside and outside the think span (markers count only overall).

        A completion starts inside the span when its prompt ends inside an open `<think>`.
        """
        counts = [0] * 6
        for i, ids in enumerate(completion_ids):
            inside = prompt_ids is not None and think_is_open(prompt_ids[i], think_start_id, think_end_id)
            for token in _ids(ids):
                reasoning = self.is_reasoning(token)
                counts[0] += reasoning
                counts[1] += 1
                if token in (think_start_id, think_end_id):
                    inside = token == think_start_id
                    continue
                counts[2 if inside else 4] += reasoning
                counts[3 if inside else 5] += 1
        return counts

    def stats(
        self,
        completion_ids: Sequence[Sequence[int]],
        think_start_id: int,
        think_end_id: int,
        prompt_ids: Sequence[Sequence[int]] | None = None,
    ) -> dict[str, float]:
        """Share of completion tokens from the reasoning vocabulary: overall, in and outside the think span.

        Takes unpadded id lists; a share with no tokens to count is NaN.
        """
        return shares(self.token_counts(completion_ids, think_start_id, think_end_id, prompt_ids))

    def to_config(self) -> dict:
        return dataclasses.asdict(self)


def shares(counts: Sequence[int]) -> dict[str, float]:
    """`token_counts` (possibly summed over processes) as the three shares."""
    pairs = [(counts[2 * i], counts[2 * i + 1]) for i in range(len(SHARE_KEYS))]
    return {key: hits / n if n else float("nan") for key, (hits, n) in zip(SHARE_KEYS, pairs, strict=True)}


@functools.cache
def _byte_decoder() -> dict[str, int]:
    return {char: byte for byte, char in bytes_to_unicode().items()}


def _token_bytes(tokens: Sequence[str | None]) -> list[bytes] | None:
    """Each token's bytes on a byte-level vocabulary (GPT-2's byte alphabet), or None if the vocabulary is not one."""
    decoder = _byte_decoder()
    pieces = []
    for token in tokens:
        if token is None or any(char not in decoder for char in token):
            return None
        pieces.append(bytes(decoder[char] for char in token))
    return pieces


def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte)."""
    return 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2 if lead >= 0xC0 else 1


def _ids(ids: Iterable[int]) -> list[int]:
    """Plain ints from a list or a tensor."""
    return ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]


def think_is_open(ids: Sequence[int], think_start_id: int, think_end_id: int) -> bool:
    """Whether `ids` end inside a `<think>` span: its last marker is `<think>`."""
    for token in reversed(_ids(ids)):
        if token in (think_start_id, think_end_id):
            return token == think_start_id
    return False


def think_token_ids(tokenizer) -> tuple[int, int]:
    """Ids of `<think>` and `</think>`, which must be single tokens of the tokenizer."""
    ids = tokenizer.convert_tokens_to_ids([THINK_START, THINK_END])
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ConfigError(f"{WHERE}.mode", f"the tokenizer has no {THINK_START}/{THINK_END} tokens",
                          "use a reasoning model's tokenizer (e.g. Qwen3)")
    return ids[0], ids[1]
