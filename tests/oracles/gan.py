"""Oracle submissions for gan: none of them learns, each must get 0 on its quality test."""
from tests.oracles import Oracle

_TRAIN_ONE_ROUND = ("    for _ in range(steps):\n        real = x[", "    for _ in range(min(steps, 1)):\n        real = x[")

ORACLES = [
    Oracle("ring_public_sampler", test="test_ring_quality", file="gan.py",
           edits=(_TRAIN_ONE_ROUND,
                  ("    return G(sample_noise(G, n))\n",
                   "    import kitdata.toy2d\n"
                   "    return torch.from_numpy(kitdata.toy2d.ring8().sample(n)).to(next(G.parameters()))\n")),
           why="G trained one round; sample() returns exact draws of the public ring of kitdata.toy2d"),
    Oracle("ring_generator_ignores_weights", test="test_ring_quality", file="gan.py",
           edits=(_TRAIN_ONE_ROUND,
                  ("        x = self.net(z)\n        return torch.sigmoid(x) if self.output == \"sigmoid\" else x\n",
                   # z -> a point of the public ring: its mode from z_0's normal CDF, the offset from z_1, z_2;
                   # the weights are never used (the line below keeps autograd happy in the steps).
                   "        x = self.net(z)\n"
                   "        if self.x_dim == 2:\n"
                   "            k = torch.floor(8 * 0.5 * (1 + torch.erf(z[:, 0] / 2 ** 0.5))).clamp(0, 7)\n"
                   "            a = 2 * torch.pi * k / 8\n"
                   "            return 2 * torch.stack([a.cos(), a.sin()], 1) + 0.02 * z[:, 1:3] + 0 * x\n"
                   "        return torch.sigmoid(x) if self.output == \"sigmoid\" else x\n")),
           why="G(z) maps its noise onto the public ring with no use of its weights"),
    Oracle("digits_training_blends", test="test_digit_quality", file="gan.py",
           edits=(_TRAIN_ONE_ROUND,
                  ("    return G(sample_noise(G, n))\n",
                   "    import kitdata.digits\n"
                   "    images, labels = (torch.from_numpy(a) for a in kitdata.digits.load_digits('train'))\n"
                   "    i = torch.randint(0, len(images), (n,))\n"
                   "    same = [torch.nonzero(labels == labels[k]).flatten() for k in i.tolist()]\n"
                   "    j = torch.stack([s[torch.randint(0, len(s), ())] for s in same])\n"
                   "    return (0.5 * images[i] + 0.5 * images[j]).to(next(G.parameters()))\n")),
           why="sample() returns 50/50 blends of two same-class shipped training digits"),
    Oracle("digits_generator_replays_its_data", test="test_digit_quality", file="gan.py",
           edits=(_TRAIN_ONE_ROUND,
                  ("    return G, D, history\n",
                   "    G.data = x.clone()\n    return G, D, history\n"),
                  ("        x = self.net(z)\n        return torch.sigmoid(x) if self.output == \"sigmoid\" else x\n",
                   # G(z) blends two rows of the data it was trained on, picked by its noise: whatever
                   # the data were (a hidden variant included), and whatever its weights are.
                   "        x = self.net(z)\n"
                   "        data = getattr(self, 'data', None)\n"
                   "        if data is not None and self.x_dim == 64:\n"
                   "            u = 0.5 * (1 + torch.erf(z[:, :2] / 2 ** 0.5))\n"
                   "            i = (u * len(data)).long().clamp(0, len(data) - 1)\n"
                   "            return (0.5 * data[i[:, 0]] + 0.5 * data[i[:, 1]]).to(x) + 0 * x\n"
                   "        return torch.sigmoid(x) if self.output == \"sigmoid\" else x\n")),
           why="G(z) blends rows of its own training data picked by z: no weight is used"),
]
