"""Known-answer tests for the IKEv2 KDF (RFC 7296 §2.13, §2.14, §2.17, §2.18).

Each vector gives Ni, Nr, g^ir, g^ir (new), SPIi, SPIr and expects SKEYSEED,
DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), DKM(Child SA) = prf+(SK_d, Ni | Nr),
DKM(Child SA D-H) = prf+(SK_d, g^ir (new) | Ni | Nr) and
SKEYSEED(Rekey) = prf(SK_d, g^ir (new) | Ni | Nr), where SK_d is the first
PRF-output-length bytes of DKM — the NIST SP 800-135 IKEv2 KDF component test.

Sources:
- SHA-256: NIST ACVP-Server (github.com/usnistgov/ACVP-Server), IKEv2 KDF
  unit test ``IkeV2Tests.cs``, case "IKEv2 SHA2-256" (DKM length 3072 bits).
- SHA-1: libreswan (github.com/libreswan/libreswan), the example run quoted
  in its ``libreswan-ikev2-cavs`` CAVS driver (``-h 2``, DKM length 132 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from secpath.crypto.kdf import child_keymat, derive_ike_keys, rekey_skeyseed, skeyseed
from secpath.crypto.prf import prf_output_bytes, prf_plus
from secpath.secret import Secret


@dataclass(frozen=True)
class KdfVector:
    source: str
    prf: str
    dkm_bytes: int
    ni: str
    nr: str
    gir: str
    gir_new: str
    spi_i: str
    spi_r: str
    skeyseed: str
    dkm: str
    dkm_child: str
    dkm_child_dh: str
    skeyseed_rekey: str


VECTORS = [
    KdfVector(
        source="NIST ACVP-Server IkeV2Tests.cs 'IKEv2 SHA2-256'",
        prf="sha256",
        dkm_bytes=3072 // 8,
        ni=(
            "0a58fea9c1d4fee2e74e1aad6fb02dd5f318eb127465a112be8dc3c04d5dba62"
            "eae708f9dc1b2362afd6ba4bda3cf5000f4979fbcbadbcfda9291593829c4e90"
            "5c21db0c2ee15175ce77a8a0dadf25c7f175bc53fd91b636a9b3c50b203de9b9"
            "d6dc463dcb4048f101e26498ceaed3afbcd931394a7e099392dfff82e5d6fa85"
            "c2e8a8ab90ad363a66795dc32798847e405acd87988140f973058917273a6b0b"
            "afb962c75e2b1a21e79c08beeb82168bf8b4b57f3dce867bf7862a7b8acbc21b"
            "e838021913daf64340c055ed17aaf7b6e1d0ca33ae890ddbdb83f4e615aad5e3"
            "bff58c3db70bac81a0dfbabe5391fc62bca4659e22a0741e01d8d06e67d9bb41"
        ),
        nr=(
            "e4fdfa68df6171d9eaff8b7b5ad31e7c6098d259f3397c9854cbefe7449b0864"
            "c1df16ddece8b26567560f8d59182a44c19149c2d0d72606a160021ade3d23c7"
            "c6936c91a4b6bec37adf38cfc84b851c68dcee06f81306f63abbefc07e231e30"
            "58c49437a557df617eac01663593d2a3e594699284c0a35eae6931492ccb2a43"
            "db72a600a3899205d681d2b76b1280e456339bb10e0c584aecfdae31c77a4c40"
            "dbcb345f782ac32835d4c220c1e97254ded6a40075dd717b00b69c86a49e8017"
            "73026536ae02d58a649827f1ba67610ee936dffd11c9d5a9156631916a0a0046"
            "ec0ba42f56f2a18de83d5d71a985b0cc9eec2c06b3d907ca58454419f374069d"
        ),
        gir="9d469de41b4739c7dd01f19aa94f17e48150ae9dbede94832142db19",
        gir_new="c2987b0767006c3b9aea491bfed1646a3d7194639492b8d45b23b383",
        spi_i="c8de93111750e409",
        spi_r="32d51b33508997fa",
        skeyseed="eec13ac67c2e072abb684ab4e7b6ce3e7f400af8b96bed48e113497ed337f8d4",
        dkm=(
            "bc83518f63b762874ac57947cdfae33a8d9724df0b83ee4b6df38c23fc2ad829"
            "f4d70b5a68dd1f5a52416f09758638aedf919c09a17c5298cdb703bb75b1005c"
            "ba0109739aaa4efd2fe7534c95ad05e546e4419931270eddcab68ac1589d7fde"
            "47f5b9e8d5b614cb24ec3caf515497a9e99ee6f1b318ff153b539ef071dcaff9"
            "b41945dcb780700d69e5dc888a91de195c52825badfd0ab4c33cec71ab5c2b4b"
            "adefe5455455ce5d8ae91721a2091bcccc1514e69482c9c8da1d9f0f187eedda"
            "916393570a8c0a8dfabc26d8ed31e8ea47662515972a22d11d692bc1fac6395a"
            "ecd82a01ab78daafcd6f3070b1201f158a19331b5d21ceee66fccd2ea37bc076"
            "48b9539a52dbf797af53e31a0e8706dd86cf5081ebabd095f281d23c222dd3bc"
            "5abf06869017ca8f751cafcc85abea6ba88c139d1f32a12f7f486cf57eae5d85"
            "551b97f3963616d8f597c70efa98c1e1fa369fb77a80b1ec5fe533890672c455"
            "1172eab1b7fd68ad08c4d4c69f2a867302065ca730aa6915bc2cfb6d93820977"
        ),
        dkm_child=(
            "c725012285d56e53244a9baaaf95abfca543708d333a3f3a86ba660e00edd4d4"
            "89bcd631819fda0413382edd9f53d1ed718e056c2ad91d38de90f06cd434de70"
            "141d051c021e7ddd6e4137946b4770dca59a4decabdd866852eb557fdd995646"
            "613ff2923f5f23aa58c8fbd5ad52cf2eac9bda97faad5596695f4a747a0f1cc6"
            "a1f78b2181138fb19ac24574d2e6b3a40d6e688abb919a27d793b76568ec66bd"
            "099f6f476b705c1472d774a1516a11311b887688f36649e24227640ea8d8666b"
            "9f452217e7103b6f0a92b6adb8fbda650ba58d6ac13ac6f6b6361a5d1c44f1e9"
            "f22196c96295115c5d01a120e7265962d20353a049286908da776c2165f706a1"
            "6f43d85fcd319f89c4386340bcb8ed10df38345cb68af719abaf997e9789a5f1"
            "9a392dcecd78168ba282f0b30555c7a47031a3156d12d7158aa41b863b8394d3"
            "0fec63120e89cbc5750eed7786f7d5961b1f2e6faca641ed776d2211bee757b6"
            "8b77f94056172553715da9fbd1c9a8728f28a2f3c9714a4917490132562484cd"
        ),
        dkm_child_dh=(
            "140a1f2a3c94318ece6edfa8c63f37d8d45982de8b6cbfe34011150db0253e34"
            "de3796d4aa579954a0bbf234794eb6e7ece2a8f91100f5507df4ee8e66c7813d"
            "4c0ff64d484a3494c54b0d9c605ea24234a49a010ce5c352feb9e1060c8c7872"
            "29466296cdc9d11bb9d221ed2bb39544572464254ec02a0fbe777b07402c775e"
            "b6d3e53cd16214c707f851942cc7da92a811b6c5c82f29d9fc3751b0ebff9898"
            "fb14372402a6989ffb9cc32dfe7e2cea32fd882e09804d7fea34ce3b5eb6f303"
            "e095c48a452b0a3eccada81af22195ebbaad289aeabdab074c94e751496bde39"
            "d868ebf1d693f36d1c3c672bbb59c9f77aeb68de57d77da231b7f13d6d277f60"
            "0c3d3086c4de7b3a59127f4cb9c118935574f30e1b7c88b52c8c3531fdbd38ee"
            "3d14c69e81803ced6e7501fa0180f6d110b648272002dc1ad5bf09dc83188011"
            "da1d48632e0d2453c8abdd8e9fd32a576aeb9ddfb0a024f674441c20a950d9bd"
            "8cd7b30933cc0d8e87b55e8aa9d913579b410417b3acc13c14bf73c457327873"
        ),
        skeyseed_rekey="05f796c8df322a7e33283ae5fa2f376d8d5efa0ac3745fc548e430031424c121",
    ),
    KdfVector(
        source="libreswan libreswan-ikev2-cavs example run (-h 2, -l 132)",
        prf="sha1",
        dkm_bytes=132,
        ni="32b50d5f4a3763f3",
        nr="9206a04b26564cb1",
        gir="4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52",
        gir_new="863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330",
        spi_i="34c9e7c188868785",
        spi_r="3ff77d760d2b2199",
        skeyseed="a9a7b222b59f8f48645f28a1db5b5f5d7479cba7",
        dkm=(
            "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002"
            "a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a"
            "5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd1119"
            "8af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435"
            "a7a56cc4"
        ),
        dkm_child=(
            "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c581"
            "1a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee7181"
            "4ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf"
            "285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e66499"
            "4d234cb4"
        ),
        dkm_child_dh=(
            "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d373016"
            "28190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c04000"
            "52f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a"
            "05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054"
            "d56fd74c"
        ),
        skeyseed_rekey="63e81194946ebd05df7df5ebf5d8750056bf1f1d",
    ),
]

IDS = [v.source for v in VECTORS]


def _b(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_skeyseed(v: KdfVector) -> None:
    seed = skeyseed(v.prf, _b(v.ni), _b(v.nr), Secret(_b(v.gir)))
    assert seed.reveal().hex() == v.skeyseed


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_prf_plus_dkm(v: KdfVector) -> None:
    seed = _b(v.ni) + _b(v.nr) + _b(v.spi_i) + _b(v.spi_r)
    dkm = prf_plus(v.prf, _b(v.skeyseed), seed, v.dkm_bytes)
    assert dkm.reveal().hex() == v.dkm


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_child_keymat_without_and_with_pfs(v: KdfVector) -> None:
    sk_d = Secret(_b(v.dkm)[: prf_output_bytes(v.prf)])
    plain = child_keymat(v.prf, sk_d, _b(v.ni), _b(v.nr), v.dkm_bytes)
    assert plain.reveal().hex() == v.dkm_child
    pfs = child_keymat(
        v.prf, sk_d, _b(v.ni), _b(v.nr), v.dkm_bytes, shared_secret=Secret(_b(v.gir_new))
    )
    assert pfs.reveal().hex() == v.dkm_child_dh


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_rekey_skeyseed(v: KdfVector) -> None:
    sk_d = Secret(_b(v.dkm)[: prf_output_bytes(v.prf)])
    seed = rekey_skeyseed(v.prf, sk_d, Secret(_b(v.gir_new)), _b(v.ni), _b(v.nr))
    assert seed.reveal().hex() == v.skeyseed_rekey


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_derive_ike_keys_splits_the_dkm_in_rfc_order(v: KdfVector) -> None:
    # RFC 7296 §2.14: SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr
    seed = skeyseed(v.prf, _b(v.ni), _b(v.nr), Secret(_b(v.gir)))
    keys = derive_ike_keys(
        v.prf, "aes128", v.prf, seed,
        ni=_b(v.ni), nr=_b(v.nr), spi_i=_b(v.spi_i), spi_r=_b(v.spi_r),
    )
    parts = [keys.sk_d, keys.sk_ai, keys.sk_ar, keys.sk_ei, keys.sk_er, keys.sk_pi, keys.sk_pr]
    joined = b"".join(p.reveal() for p in parts)
    # every vector's DKM is long enough for aes128 + HMAC of its hash
    assert len(joined) <= v.dkm_bytes
    assert joined.hex() == v.dkm[: 2 * len(joined)]
    assert keys.skeyseed.reveal().hex() == v.skeyseed
