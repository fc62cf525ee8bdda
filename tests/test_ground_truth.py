"""Reading contact-PPG ground truth with the glitches real oximeter logs hold (repeated or backward timestamps)."""

from __future__ import annotations

import numpy as np
import pytest

from smartmirror.vitals.ground_truth import DatasetError, drop_unordered_samples, find_clips, read_ground_truth


def _ubfc_text(ppg: np.ndarray, hr: np.ndarray, times: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.7e}" for v in row) for row in (ppg, hr, times)) + "\n"


def _pulse(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = np.arange(n) / 30.0
    return np.sin(2 * np.pi * 1.2 * times), np.full(n, 72.0), times


def test_a_repeated_timestamp_is_dropped_with_a_note(tmp_path):
    ppg, hr, times = _pulse(300)
    times[120] = times[119]                                   # UBFC DATASET_2: the oximeter logged one time twice
    path = tmp_path / "ground_truth.txt"
    path.write_text(_ubfc_text(ppg, hr, times))
    truth = read_ground_truth(path)
    assert len(truth.ppg) == len(truth.times_s) == len(truth.heart_rate_bpm) == 299
    assert np.all(np.diff(truth.times_s) > 0)
    assert truth.ppg[119] == pytest.approx(ppg[119], abs=1e-6) and truth.ppg[120] == pytest.approx(ppg[121], abs=1e-6)
    assert len(truth.notes) == 1 and "dropped 1 of 300" in truth.notes[0] and "120" in truth.notes[0]


def test_a_step_back_in_time_drops_the_samples_until_the_clock_is_past_it():
    times = np.array([0.0, 0.1, 0.2, 0.3, 0.15, 0.25, 0.4, 0.5])
    assert drop_unordered_samples(times).tolist() == [True, True, True, True, False, False, True, True]
    assert drop_unordered_samples(np.array([0.0, np.nan, 0.2])).tolist() == [True, False, True]


def test_dataset_1_xmp_with_a_repeated_row(tmp_path):
    rows = [f"{1000 + 33 * i},{70 + i % 3},98,{np.sin(i / 5):.4f}" for i in range(60)]
    rows.insert(30, rows[29])                                 # the same row logged twice
    path = tmp_path / "gtdump.xmp"
    path.write_text("\n".join(rows) + "\n")
    truth = read_ground_truth(path)
    assert len(truth.times_s) == 60 and np.all(np.diff(truth.times_s) > 0)
    assert truth.times_s[0] == 0.0 and truth.notes


def test_a_clean_file_has_no_notes_and_a_scrambled_one_is_rejected(tmp_path):
    ppg, hr, times = _pulse(200)
    clean = tmp_path / "clean.txt"
    clean.write_text(_ubfc_text(ppg, hr, times))
    assert read_ground_truth(clean).notes == ()
    scrambled = tmp_path / "scrambled.txt"
    scrambled.write_text(_ubfc_text(ppg, hr, np.random.default_rng(0).permutation(times)))
    with pytest.raises(DatasetError) as caught:
        read_ground_truth(scrambled)
    assert caught.value.code == "bad_ground_truth" and "not increasing" in caught.value.message


def test_find_clips_flags_two_subjects_sharing_one_ground_truth_file(tmp_path):
    ppg, hr, times = _pulse(100)
    for name, shift in (("subject1", 0.0), ("subject2", 0.0), ("subject3", 0.5)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "vid.mp4").write_bytes(b"\0")
        (folder / "ground_truth.txt").write_text(_ubfc_text(ppg + shift, hr, times))
    (tmp_path / ".hidden").mkdir()
    clips = {c.name: c for c in find_clips(tmp_path)}
    assert sorted(clips) == ["subject1", "subject2", "subject3"]
    assert "subject2" in clips["subject1"].notes[0] and "subject1" in clips["subject2"].notes[0]
    assert clips["subject3"].notes == ()
