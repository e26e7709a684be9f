"""The header lexicon in the evaluation: learned per fold from the other folds only, and the shipped one."""

from __future__ import annotations

from pathlib import Path

from orchestrator.evaluation.receipt_folds import assign_folds, fold_lexicons, load_labelled
from orchestrator.evaluation.train_lexicon import learn_from_folders, main
from orchestrator.rules.receipt.lexicon import Lexicon, shipped_lexicon


def test_each_fold_learns_its_lexicon_from_the_other_folds_only(shared_receipts: Path) -> None:
    labelled = load_labelled(shared_receipts / "sroie")
    fold_of = assign_folds({r.id: r.vendor for r in labelled}, 5)
    lexicons = fold_lexicons(labelled, fold_of, 5)
    for fold, lexicon in enumerate(lexicons):
        held_out = {r.vendor for r in labelled if fold_of[r.id] == fold}
        others = {r.vendor for r in labelled if fold_of[r.id] != fold}
        # A word of a held-out vendor's name is known only when two vendors of the other folds use it.
        for receipt in labelled:
            if fold_of[receipt.id] != fold:
                continue
            for word in str(receipt.truth["company"]).upper().split():
                if word in lexicon.words:
                    users = {
                        r.vendor for r in labelled if r.vendor in others and word in str(r.truth["company"]).upper()
                    }
                    users |= {
                        r.vendor for r in labelled if r.vendor in others and word in str(r.truth["address"]).upper()
                    }
                    assert len(users) >= 2, (fold, word)
        assert held_out.isdisjoint(others)


def test_the_shipped_lexicon_is_the_one_the_script_learns(shared_receipts: Path, tmp_path: Path) -> None:
    folders = [shared_receipts / "sroie", shared_receipts / "wildreceipt"]
    shipped = shipped_lexicon()
    assert shipped is not None
    learned = learn_from_folders(folders)
    assert learned.words == shipped.words and learned.pairs == shipped.pairs
    out = tmp_path / "lexicon.json"
    assert main([*map(str, folders), "--out", str(out)]) == 0
    assert Lexicon.model_validate_json(out.read_text(encoding="utf-8")).words == shipped.words
    assert main([str(tmp_path / "missing")]) == 2
