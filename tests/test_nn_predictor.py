"""Spiking video predictor and scheduled sampling (bioplastic.nn.predictor)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bioplastic.data import moving_digits  # noqa: E402
from bioplastic.nn import SpikingPredictor, sampling_mask, scheduled_sampling_eta  # noqa: E402


def _frames(n=2, size=16):
    video = moving_digits(n, size=size, n_frames=8, digit_scale=1, seed=0)
    return torch.from_numpy(video).float()


def test_shapes_and_teacher_forcing_equivalence():
    torch.manual_seed(0)
    model = SpikingPredictor(1, (16,), cell="stc_lif", kernel_size=3, groups=4, patch=2)
    frames = _frames()
    pred = model(frames, 4)
    assert pred.shape == (7, 2, 1, 16, 16)
    # All-ones mask feeds every true frame: the same as conditioning on all T-1 frames.
    forced = model(frames, 4, mask=torch.ones(3, 2))
    torch.testing.assert_close(forced, model(frames, 7), rtol=0, atol=0)
    # Predicting the future alone equals the last frames of the mask-0 run.
    torch.testing.assert_close(model.predict(frames[:4], 4), pred[-4:], rtol=0, atol=0)


def test_training_reduces_loss():
    torch.manual_seed(1)
    model = SpikingPredictor(1, (16,), cell="stc_lif", kernel_size=3, groups=4, patch=2)
    frames = _frames()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = model.loss(frames, 4, mask=torch.ones(3, 2))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_scheduled_sampling_schedule():
    # PredRNN / the STC code: eta = 1 - 2e-5 * iteration, 0 from iteration 50,000
    assert scheduled_sampling_eta(0) == 1.0
    assert scheduled_sampling_eta(25_000) == pytest.approx(0.5)
    assert scheduled_sampling_eta(50_000) == 0.0
    g = torch.Generator().manual_seed(0)
    mask = sampling_mask(0.3, 4000, 3, generator=g)
    assert mask.shape == (2, 4000)
    assert abs(float(mask.mean()) - 0.3) < 0.03          # 3 sigma of Bernoulli(0.3), n=8000
    assert sampling_mask(1.0, 3, 4).min() == 1 and sampling_mask(0.0, 3, 4).max() == 0


def test_bad_predictor_input():
    model = SpikingPredictor(1, (16,), kernel_size=3, groups=4, patch=2)
    with pytest.raises(ValueError, match="n_in must be"):
        model(_frames(), 8)
    with pytest.raises(ValueError, match="multiples of patch"):
        model(torch.zeros(4, 1, 1, 15, 15), 2)
    with pytest.raises(ValueError, match="mask must have shape"):
        model(_frames(), 4, mask=torch.ones(2, 2))
    with pytest.raises(ValueError, match="cell must be one of"):
        SpikingPredictor(1, (16,), cell="lstm")
    with pytest.raises(ValueError, match="eta must lie"):
        sampling_mask(1.5, 2, 3)
    assert np.isfinite(model.loss(_frames(), 4).item())


def test_mask_of_other_types_is_converted():
    # bool, float64 (on a float32 model) and NumPy masks gave bare torch errors or named x
    torch.manual_seed(0)
    model = SpikingPredictor(1, (8,), cell="lif", kernel_size=3, groups=4, patch=2)
    frames = _frames()
    choice = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = model(frames, 4, mask=choice)
    for mask in (choice.bool(), choice.double(), choice.numpy(), choice.long(),
                 choice.tolist()):
        torch.testing.assert_close(model(frames, 4, mask=mask), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"mask must hold values in \[0, 1\]"):
        model(frames, 4, mask=choice * 2)
    with pytest.raises(TypeError, match="mask must hold booleans or real numbers"):
        model(frames, 4, mask=np.full((3, 2), "a"))


def test_predict_and_forward_name_their_arguments():
    model = SpikingPredictor(1, (8,), cell="lif", kernel_size=3, groups=4, patch=2)
    frames = _frames()
    with pytest.raises(TypeError, match="frames_in must be a torch.Tensor"):
        model.predict(frames[:4].numpy(), 2)
    with pytest.raises(TypeError, match="frames must be a torch.Tensor"):
        model(frames.numpy(), 4)
    for n_out in (0, -1):
        with pytest.raises(ValueError, match="n_out must be a positive integer"):
            model.predict(frames[:4], n_out)
    with pytest.raises(TypeError, match="n_out must be a positive integer"):
        model.predict(frames[:4], 2.0)


def test_scheduled_sampling_eta_stays_in_the_unit_interval():
    assert scheduled_sampling_eta(0) == 1.0 and scheduled_sampling_eta(50_000) == 0.0
    assert scheduled_sampling_eta(25_000) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="iteration must be an integer >= 0"):
        scheduled_sampling_eta(-5)                     # was 1.0001
    with pytest.raises(ValueError, match="decay must be finite and >= 0"):
        scheduled_sampling_eta(3, decay=-0.1)
