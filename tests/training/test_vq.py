import torch

from mgm.training.image_data import ImageFolderDataModule, ShapesDataModule
from mgm.training.vq import ImageVQTraining, VGGPerceptual
from tests.conftest import quiet_trainer


def _fit(system, steps=3):
    data = ShapesDataModule(num_images=64, image_size=16, batch_size=8)
    trainer = quiet_trainer(steps, limit_val_batches=1)
    trainer.fit(system, data)
    return trainer


def test_training_updates_encoder_decoder_and_codebook(tiny_vq):
    before = {k: v.clone() for k, v in tiny_vq.state_dict().items()}
    system = ImageVQTraining(tiny_vq, restart_every=0)
    _fit(system)
    after = tiny_vq.state_dict()
    for name in ("vq.encoder.conv_in.weight", "vq.decoder.conv_out.weight", "vq.quantize.embedding.weight"):
        assert not torch.equal(before[name], after[name]), name
    assert system.usage.sum() > 0


def test_dead_codes_restart_onto_encoder_outputs(tiny_vq):
    system = ImageVQTraining(tiny_vq)
    system.usage.fill_(1 / 32)
    system.usage[:5] = 0  # five codes never chosen lately
    assert system.dead_codes().sum() == 5
    latents = torch.randn(2, 4, 8, 8) * 10
    assert system.restart_dead_codes(latents) == 5
    flat = latents.permute(0, 2, 3, 1).reshape(-1, 4)
    nearest = torch.cdist(tiny_vq.codebook[:5], flat).min(-1).values
    assert (nearest < 0.05).all(), "restarted codes sit on encoder outputs"
    assert system.dead_codes().sum() == 0


def test_restarts_go_to_the_worst_fit_outputs(tiny_vq):
    # 120 of 128 outputs sit exactly on code 10; 8 sit far away: every restart must land on those 8.
    system = ImageVQTraining(tiny_vq)
    system.usage.fill_(1 / 32)
    system.usage[:4] = 0
    flat = tiny_vq.codebook[10].detach().repeat(128, 1)
    far = torch.randn(8, 4) * 10 + 50
    flat[::16] = far
    latents = flat.view(2, 8, 8, 4).permute(0, 3, 1, 2)
    torch.manual_seed(0)
    assert system.restart_dead_codes(latents) == 4
    nearest_far = torch.cdist(tiny_vq.codebook[:4], far).min(-1).values
    assert (nearest_far < 0.05).all(), "restarts landed on outputs the codebook already fits"


def test_adversarial_term_trains_a_discriminator(tiny_vq):
    system = ImageVQTraining(tiny_vq, adversarial_weight=0.1, restart_every=0)
    before = [p.clone() for p in system.discriminator.parameters()]
    _fit(system)
    assert any(not torch.equal(a, b) for a, b in zip(before, system.discriminator.parameters()))


def test_perceptual_distance_shape():
    # ImageNet weights need a download; the architecture and loss run on random weights.
    loss = VGGPerceptual(pretrained=False)(torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1)
    assert loss.dim() == 0 and loss > 0


def test_image_folder_datamodule(tmp_path):
    from mgm.pipelines.image_io import write_pngs

    for name in ("cats", "dogs"):
        write_pngs({f"{i}.png": torch.rand(3, 40, 30) for i in range(3)}, tmp_path / name)
    data = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=2, val_fraction=0.2)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    assert batch["images"].shape == (2, 3, 16, 16) and batch["images"].max() <= 1
    assert data.classes == ["cats", "dogs"] and len(data.train_set) + len(data.val_set) == 6
