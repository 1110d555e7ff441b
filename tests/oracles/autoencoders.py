"""Oracle submissions for the autoencoders assignment: each trains as the reference does (so
train() runs), then answers the learned-quality probe from something it never learned: the
public ring's exact Bayes denoiser, a closed-form fit to the shipped digits, or shipped
digits decoded from the code. Each must score 0 on its test."""
from tests.oracles import Oracle

F = "autoencoders.py"

_AE_FORWARD = ('    def forward(self, x: torch.Tensor) -> torch.Tensor:\n'
               '        """x_hat = decode(encode(x)), (B, x_dim)."""\n'
               '        ### BEGIN SOLUTION\n'
               '        return self.decode(self.encode(x))\n')

_LINEAR_FORWARD = ('    def forward(self, x: torch.Tensor) -> torch.Tensor:\n'
                   '        """x_hat = decode(encode(x))."""\n'
                   '        ### BEGIN SOLUTION\n'
                   '        return self.decode(self.encode(x))\n')

# The exact E[x | x~] of the public ring8 at the grader's sigma 0.5, with a small fixed
# wobble so that it is not suspiciously exact (today's floor rejects an excess of 0).
_BAYES_RING = _AE_FORWARD.replace(
    "        return self.decode(self.encode(x))\n",
    "        if self.x_dim == 2 and not torch.is_grad_enabled():\n"
    "            import kitdata.toy2d\n"
    "            ring = kitdata.toy2d.ring8()\n"
    "            means = torch.as_tensor(ring.means, dtype=x.dtype)\n"
    "            s2, v = float(ring.std) ** 2, float(ring.std) ** 2 + 0.25\n"
    "            d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)\n"
    "            r = torch.softmax(-d2 / (2 * v), dim=1)\n"
    "            within = means[None] + (s2 / v) * (x[:, None, :] - means[None])\n"
    "            return (r[..., None] * within).sum(1) + 0.12 * torch.sin(3 * x)\n"
    "        return self.decode(self.encode(x))\n")

# The Wiener filter (the best linear denoiser) of the shipped training digits at sigma 0.4:
# m + C (C + sigma^2 I)^-1 (x - m), written in; the trained weights are never used.
_WIENER_DIGITS = _AE_FORWARD.replace(
    "        return self.decode(self.encode(x))\n",
    "        if self.x_dim == 64 and not self.training and not torch.is_grad_enabled():\n"
    "            import kitdata.digits\n"
    "            d = torch.as_tensor(kitdata.digits.load_digits('train')[0], dtype=torch.float64)\n"
    "            m = d.mean(0)\n"
    "            c = (d - m).T @ (d - m) / d.shape[0]\n"
    "            w = c @ torch.linalg.inv(c + 0.16 * torch.eye(64, dtype=torch.float64))\n"
    "            return ((x.double() - m) @ w.T + m).to(x.dtype)\n"
    "        return self.decode(self.encode(x))\n")

# PCA of the shipped training digits in closed form: x_hat = m + U U^T (x - m), U the top
# z_dim eigenvectors; the trained weights are never used.
_PCA_DIGITS = _LINEAR_FORWARD.replace(
    "        return self.decode(self.encode(x))\n",
    "        if not torch.is_grad_enabled():\n"
    "            import kitdata.digits\n"
    "            d = torch.as_tensor(kitdata.digits.load_digits('train')[0], dtype=torch.float64)\n"
    "            m = d.mean(0)\n"
    "            u = torch.linalg.eigh((d - m).T @ (d - m))[1][:, -self.z_dim:]\n"
    "            return ((x.double() - m) @ u @ u.T + m).to(x.dtype)\n"
    "        return self.decode(self.encode(x))\n")

# decode(z) in evaluation returns 50/50 blends of two same-class shipped training digits,
# chosen from the code; training is untouched (the loss still goes through the decoder).
_BLEND_DECODE = (
    '        """z (B, z_dim) -> x_hat (B, x_dim), no output activation."""\n'
    '        ### BEGIN SOLUTION\n'
    '        if self.x_dim == 64 and not torch.is_grad_enabled():\n'
    '            import kitdata.digits\n'
    '            d, y = (torch.as_tensor(a) for a in kitdata.digits.load_digits("train"))\n'
    '            k = (z.double().abs() * 1000).sum(-1).long()\n'
    '            i = k % d.shape[0]\n'
    '            same = [torch.nonzero(y == y[j]).reshape(-1) for j in i.tolist()]\n'
    '            j = torch.stack([s[(n * 7 + 3) % len(s)] for n, s in zip(k.tolist(), same)])\n'
    '            return (0.5 * d[i] + 0.5 * d[j]).to(z.dtype)\n'
    '        return self.decoder(z)\n')

ORACLES = [
    Oracle("pca_of_shipped_digits", test="test_linear_ae_matches_pca", file=F,
           edits=((_LINEAR_FORWARD, _PCA_DIGITS),),
           why="LinearAutoencoder.forward returns the exact PCA projection of the shipped training digits"),
    Oracle("wiener_of_shipped_digits", test="test_dae_digits", file=F,
           edits=((_AE_FORWARD, _WIENER_DIGITS),),
           why="the denoiser is the closed-form Wiener filter of the shipped digits; the trained weights are unused"),
    Oracle("bayes_denoiser_of_public_ring", test="test_dae_mixture", file=F,
           edits=((_AE_FORWARD, _BAYES_RING),),
           why="the 2-D denoiser is the exact E[x | x~] of kitdata.toy2d.ring8(), slightly perturbed; no learning"),
    Oracle("decode_blends_shipped_digits", test="test_random_latents", file=F,
           edits=(('        """z (B, z_dim) -> x_hat (B, x_dim), no output activation."""\n'
                   '        ### BEGIN SOLUTION\n'
                   '        return self.decoder(z)\n', _BLEND_DECODE),),
           why="decode(z) at generation time returns blends of two same-class shipped training digits"),
]
