"""Fine-tune a tiny GPT-2 with a LoRA adapter under TRL's SFTTrainer; every save becomes a version.

    python examples/integrations/hf_lora_sft.py [WORKDIR] [--steps 4] [--save-steps 2]

Nothing is downloaded: the GPT-2 (2 layers, 64 wide), a word-level tokenizer of
128 tokens and 32 random sequences are built here. The Trainer saves at steps 2
and 4; ``AmberCallback`` snapshots each checkpoint as a version of ``gpt2-lora``
(iteration, loss, learning rate, LoRA rank in metadata). Then the latest version
is loaded back with ``PeftModel.from_pretrained(base, amber.path(...))`` and its
logits are compared with the trained model's. WORKDIR (default: a new temporary
folder) gets an Amber repository and the Trainer's output folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import datasets
import peft
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers
from trl import SFTConfig, SFTTrainer

import amber
from amber.integrations.transformers import AmberCallback

MODEL = "gpt2-lora"
VOCAB = 128


def tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A word-level tokenizer over the words t0..t127 (t0 ends a text and pads)."""
    vocab = {f"t{i}": i for i in range(VOCAB)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="t1"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="t0", pad_token="t0", unk_token="t1")


def base_model(seed: int = 0) -> transformers.GPT2LMHeadModel:
    """The same tiny GPT-2 for the same seed: the base the adapter is trained on and loaded onto."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=2, vocab_size=VOCAB, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config)


def lora_config() -> peft.LoraConfig:
    return peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM"
    )


def dataset(n: int = 32, length: int = 16) -> datasets.Dataset:
    g = torch.Generator().manual_seed(1)
    return datasets.Dataset.from_dict(
        {"input_ids": [torch.randint(2, VOCAB, (length,), generator=g).tolist() for _ in range(n)]}
    )


def train(workdir: str, *, steps: int = 4, save_steps: int = 2, **callback: object) -> tuple[SFTTrainer, AmberCallback]:
    """Train in ``workdir`` (which must hold an Amber repository); return the trainer and the callback."""
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    amber_callback = AmberCallback(model=MODEL, repo=workdir, **callback)  # type: ignore[arg-type]
    args = SFTConfig(
        output_dir=os.path.join(workdir, "out"),
        max_steps=steps,
        save_steps=save_steps,
        logging_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        seed=0,
        report_to=[],
        use_cpu=True,
        bf16=False,  # TRL's default autocasts to bfloat16, so the in-memory model would not be the saved one
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=base_model(),
        args=args,
        train_dataset=dataset(),
        processing_class=tokenizer(),
        peft_config=lora_config(),
        callbacks=[amber_callback],
    )
    trainer.train()
    return trainer, amber_callback


def probe() -> torch.Tensor:
    return torch.arange(2, 18).reshape(1, 16)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=None)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--save-steps", type=int, default=2)
    opts = parser.parse_args(argv)
    workdir = os.path.abspath(opts.workdir or tempfile.mkdtemp(prefix="amber-hf-"))
    if not os.path.isdir(os.path.join(workdir, ".amber")):
        amber.Repo.init(workdir)
    trainer, callback = train(workdir, steps=opts.steps, save_steps=opts.save_steps)
    with amber.Repo(workdir) as repo:
        for v in reversed(repo.versions(MODEL)):
            print(f"{v.ref}  step {v.iteration}  loss {v.metrics['loss']:.4f}  r={v.metadata['r']}  [{v.kind}]")
    print("pause per save (s):", ", ".join(f"{p:.3f}" for p in callback.pauses))
    loaded = peft.PeftModel.from_pretrained(base_model(), amber.path(f"{MODEL}:latest", repo=workdir)).eval()
    trained = trainer.model.eval()
    with torch.no_grad():
        same = torch.equal(loaded(probe()).logits, trained(probe()).logits)
    print(f"{MODEL}:latest loaded with from_pretrained gives the trained model's logits: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
