"""Oracle submissions for the vae assignment: each answers the learned-quality probes from
something it never learned: blends of the shipped training digits, blends of the data it was
handed, or the held-out inputs echoed back through the decoder. Each must score 0 on its test."""
from tests.oracles import Oracle

F = "vae.py"

_NO_STEP = ("        optimiser.step()\n", "        pass   # never trains\n")

_SAMPLE = ("    z = torch.randn(n, model.z_dim, device=weight.device, dtype=weight.dtype)\n"
           "    return torch.sigmoid(model.decode(z))\n")

# sample() returns fixed 50/50 blends of two same-class shipped training digits (the first
# such oracle: no sample is a copy, and the blends look more like digits than any trained VAE's).
_BLEND_SAMPLE = (_SAMPLE,
                 "    import kitdata.digits\n"
                 "    x, y = (torch.as_tensor(a) for a in kitdata.digits.load_digits('train'))\n"
                 "    g = torch.Generator().manual_seed(0)\n"
                 "    out = []\n"
                 "    for i in range(n):\n"
                 "        idx = torch.nonzero(y == i % 10).flatten()\n"
                 "        a, b = idx[torch.randint(len(idx), (2,), generator=g)]\n"
                 "        out.append(0.5 * (x[a] + x[b]))\n"
                 "    return torch.stack(out).to(device=weight.device, dtype=weight.dtype)\n")

_DECODE = "        return self.decoder(z)\n"

# decode(z) outside training returns the logits of a blend of two same-class shipped training
# digits chosen from z: generation "from the judge's z" that never uses the trained decoder.
_BLEND_DECODE = (_DECODE,
                 "        if not torch.is_grad_enabled():\n"
                 "            import kitdata.digits\n"
                 "            x, y = (torch.as_tensor(a).double() for a in kitdata.digits.load_digits('train'))\n"
                 "            key = (z.detach().double().abs().sum(-1) * 1e4).long()\n"
                 "            rows = []\n"
                 "            for k in key.tolist():\n"
                 "                idx = torch.nonzero(y == k % 10).flatten()\n"
                 "                rows.append(0.5 * (x[idx[(k // 10) % len(idx)]] + x[idx[(k // 1000) % len(idx)]]))\n"
                 "            return torch.logit(torch.stack(rows).clamp(1e-4, 1 - 1e-4)).to(z.dtype)\n"
                 "        return self.decoder(z)\n")

# train() keeps the data it was handed (whatever transformation the grader applied to them);
# decode(z) outside training blends a row chosen from z with its nearest neighbour.
_KEEP_DATA = ("    optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n",
              "    optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n"
              "    model.seen = data.detach().clone()\n")
_BLEND_SEEN = (_DECODE,
               "        if not torch.is_grad_enabled() and hasattr(self, 'seen'):\n"
               "            d = self.seen.double()\n"
               "            key = (z.detach().double().abs().sum(-1) * 1e4).long() % d.shape[0]\n"
               "            a = d[key]\n"
               "            dist = torch.cdist(a, d)\n"
               "            dist[torch.arange(len(key)), key] = float('inf')\n"
               "            b = d[dist.argmin(1)]\n"
               "            return torch.logit((0.5 * (a + b)).clamp(1e-4, 1 - 1e-4)).to(z.dtype)\n"
               "        return self.decoder(z)\n")

# encode() remembers its input and decode() outside training echoes it back as confident
# logits: reconstructions with no latent code at all, a held-out -ELBO better than any VAE's
# yet above the floor that catches exact copies.
_ENCODE = "        mu, logvar = self.encoder(x).chunk(2, dim=-1)\n"
_REMEMBER = (_ENCODE, "        self.last_x = x.detach()\n" + _ENCODE)
_ECHO = (_DECODE,
         "        last = getattr(self, 'last_x', None)\n"
         "        if not torch.is_grad_enabled() and last is not None and z.shape[0] % last.shape[0] == 0:\n"
         "            logits = 2.5 * (2 * last - 1)\n"
         "            return logits.repeat(z.shape[0] // last.shape[0], 1).to(z.dtype)\n"
         "        return self.decoder(z)\n")

ORACLES = [
    Oracle("untrained_blends_of_shipped_digits", test="test_sample_quality", file=F,
           edits=(_NO_STEP, _BLEND_SAMPLE),
           why="never trains; sample() returns fixed 50/50 blends of two same-class shipped training digits"),
    Oracle("decode_blends_shipped_digits", test="test_sample_quality", file=F, edits=(_BLEND_DECODE,),
           why="trains, but decode(z) in evaluation returns blends of shipped digits chosen from z"),
    Oracle("decode_blends_the_data_it_was_given", test="test_sample_quality", file=F,
           edits=(_KEEP_DATA, _BLEND_SEEN),
           why="train() keeps its data; decode(z) in evaluation blends a kept row with its nearest neighbour"),
    Oracle("decode_echoes_the_encoded_input", test="test_training_loop", file=F, edits=(_REMEMBER, _ECHO),
           why="decode() in evaluation echoes the last encoded batch: reconstructions without a latent code"),
]
