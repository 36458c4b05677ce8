"""Video metrics (bioplastic.metrics) and the moving-digits data (bioplastic.data.moving)."""

import numpy as np
import pytest

from bioplastic import metrics
from bioplastic.data import load_moving_mnist, moving_digits


def test_frame_sum_metrics_by_hand():
    true = np.zeros((2, 3, 1, 4, 4))          # (T, B, C, H, W): 6 frames of 16 pixels
    pred = np.full_like(true, 0.5)
    pred[0, 0] = 1.0                          # one frame off by 1 everywhere
    # 5 frames: sum of squares 16*0.25 = 4; 1 frame: 16. Mean over 6 frames: (5*4 + 16)/6 = 6.
    assert metrics.mse_frame_sum(pred, true) == pytest.approx(6.0, rel=1e-15)
    # absolute: 5 frames 16*0.5 = 8, one frame 16: (40 + 16)/6
    assert metrics.mae_frame_sum(pred, true) == pytest.approx(56 / 6, rel=1e-15)
    assert metrics.mse_pixel(pred, true) == pytest.approx(6.0 / 16, rel=1e-15)
    assert metrics.mae_pixel(pred, true) == pytest.approx(56 / 6 / 16, rel=1e-15)


def test_psnr_by_hand_and_clipping():
    true = np.full((1, 2, 1, 8, 8), 0.2)
    pred = true + 0.1                         # mse 0.01 -> 20*log10(1/0.1) = 20 dB
    assert metrics.psnr(pred, true) == pytest.approx(20.0, abs=1e-4)   # float32 inside
    # Predictions above 1 are clipped before PSNR: 1.7 -> 1.0, error 0.8 -> 20*log10(1/0.8)
    assert metrics.psnr(np.full_like(true, 1.7), true) == pytest.approx(
        20 * np.log10(1 / 0.8), abs=1e-4)
    assert metrics.psnr(true, true) == np.inf


def test_ssim_identical_and_constant_frames_by_hand():
    rng = np.random.default_rng(0)
    frame = rng.random((3, 1, 1, 16, 16))
    assert metrics.ssim(frame, frame) == pytest.approx(1.0, rel=1e-12)
    # Constant frames a, b: variances vanish, SSIM = (2ab + C1)/(a² + b² + C1), C1 = (0.01 R)².
    a, b = 0.3, 0.6
    for data_range in (2.0, 1.0):
        c1 = (0.01 * data_range) ** 2
        value = metrics.ssim(np.full((1, 1, 1, 9, 9), a), np.full((1, 1, 1, 9, 9), b),
                             data_range=data_range)
        assert value == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-12)


def test_metric_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        metrics.mse_frame_sum(np.zeros((1, 1, 1, 4, 4)), np.zeros((1, 1, 1, 4, 5)))
    with pytest.raises(ValueError, match="pred must contain only finite"):
        metrics.psnr(np.full((1, 1, 1, 4, 4), np.nan), np.zeros((1, 1, 1, 4, 4)))
    with pytest.raises(ValueError, match="win_size"):
        metrics.ssim(np.zeros((1, 1, 1, 4, 4)), np.zeros((1, 1, 1, 4, 4)))


@pytest.mark.parametrize("size", [32, 64])
def test_moving_digits_deterministic_and_in_range(size):
    a = moving_digits(3, size=size, n_frames=20, seed=7)
    b = moving_digits(3, size=size, n_frames=20, seed=7)
    assert a.shape == (20, 3, 1, size, size)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not np.array_equal(a, moving_digits(3, size=size, n_frames=20, seed=8))
    # Digits move: consecutive frames differ, and every frame shows some ink.
    assert np.all(np.abs(np.diff(a, axis=0)).sum(axis=(2, 3, 4)) > 0)
    assert np.all(a.sum(axis=(2, 3, 4)) > 0)


def test_moving_digits_bad_input():
    with pytest.raises(ValueError, match="n_sequences must be a positive integer"):
        moving_digits(0)
    with pytest.raises(ValueError, match="digit_scale"):
        moving_digits(1, size=16, digit_scale=3)


def test_load_moving_mnist_layout(tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (20, 5, 64, 64), dtype=np.uint8)   # the file's layout
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, raw)
    videos = load_moving_mnist(path)
    assert videos.shape == (20, 5, 1, 64, 64)
    np.testing.assert_array_equal(videos[:, :, 0], raw / 255.0)
    assert load_moving_mnist(path, n_sequences=2).shape == (20, 2, 1, 64, 64)
    np.save(tmp_path / "bad.npy", raw.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        load_moving_mnist(tmp_path / "bad.npy")
    with pytest.raises(FileNotFoundError):
        load_moving_mnist(tmp_path / "missing.npy")


def test_load_moving_mnist_refuses_a_broken_file_or_too_many_sequences(tmp_path):
    # Before: a truncated file gave numpy's bare "mmap length is greater than file size"
    # (no path), and n_sequences=10 on a file of 3 silently returned 3 sequences.
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, np.zeros((20, 3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="n_sequences must be at most the 3 sequences"):
        load_moving_mnist(path, n_sequences=10)
    assert load_moving_mnist(path, n_sequences=3).shape == (20, 3, 1, 64, 64)
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.npy is not a readable .npy array file"):
        load_moving_mnist(truncated)


def test_psnr_and_ssim_refuse_true_outside_the_unit_range():
    # only pred is clipped: identical uint8 frames gave -43 dB (and a wrong SSIM) before
    frames = (np.random.default_rng(2).random((2, 1, 1, 8, 8)) * 255).astype(np.uint8)
    for metric in (metrics.psnr, metrics.ssim):
        with pytest.raises(ValueError, match=r"true must lie in \[0, 1\].*divide uint8"):
            metric(frames, frames)
        with pytest.raises(ValueError, match=r"true must lie in \[0, 1\]"):
            metric(np.zeros((1, 1, 1, 8, 8)), np.full((1, 1, 1, 8, 8), -0.5))
    scaled = frames / 255.0
    assert metrics.psnr(scaled, scaled) == np.inf
    assert metrics.ssim(scaled, scaled) == pytest.approx(1.0, rel=1e-12)
    # MSE and MAE are defined on any values (OpenSTL computes them before any clipping)
    assert metrics.mse_frame_sum(frames, frames) == 0.0


def test_ssim_takes_numpy_integer_window_and_metrics_name_grad_tensors():
    torch = pytest.importorskip("torch")
    frames = np.random.default_rng(3).random((1, 1, 1, 9, 9))
    noisy = np.clip(frames + 0.1, 0, 1)
    assert metrics.ssim(noisy, frames, win_size=np.int64(7)) == metrics.ssim(noisy, frames)
    with pytest.raises(TypeError, match="win_size must be an integer"):
        metrics.ssim(noisy, frames, win_size=7.0)
    with pytest.raises(TypeError, match=r"pred is a torch tensor that requires grad; pass "
                                        r"pred\.detach\(\)"):
        metrics.psnr(torch.tensor(noisy, requires_grad=True), frames)


@pytest.mark.parametrize("speed", [16.5, 40.0, -1.0, np.nan, np.inf])
def test_moving_digits_refuses_a_speed_out_of_range(speed):
    # 32-pixel frames, 16-pixel digits: a digit bounces at most once per frame only up to
    # 16 pixels per frame (above, a broadcast error from numpy; nan/inf bare errors)
    with pytest.raises(ValueError, match="speed"):
        moving_digits(3, size=32, speed=speed)


def test_moving_digits_speed_at_the_limits():
    still = moving_digits(2, size=32, n_frames=4, speed=0.0, seed=1)
    np.testing.assert_array_equal(still[0], still[3])
    fast = moving_digits(4, size=32, n_frames=6, n_digits=1, speed=16.0, seed=1)
    assert fast.shape == (6, 4, 1, 32, 32)
    mass = fast.sum(axis=(2, 3, 4))                   # the whole digit in every frame
    np.testing.assert_allclose(mass, mass[:1].repeat(6, axis=0))


def test_load_moving_mnist_names_a_directory_and_an_npz(tmp_path):
    with pytest.raises(ValueError, match="got the directory"):
        load_moving_mnist(tmp_path)
    archive = tmp_path / "mnist.npz"
    np.savez(archive, a=np.zeros((20, 2, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"mnist\.npz is an \.npz archive"):
        load_moving_mnist(archive)
