import shutil

from riskgym.world.images import BASE_TAG, build_base, containers_dir, host_mirror, image_recipe, recipe_hash


def test_mirror_from_deb822_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("RISKGYM_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert host_mirror("bookworm", tmp_path) == "http://mirror.invalid/debian"


def test_mirror_from_one_line_sources_list(tmp_path, monkeypatch):
    monkeypatch.delenv("RISKGYM_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text("# comment\ndeb [arch=amd64] http://other.invalid/debian trixie main\n")
    assert host_mirror("trixie", tmp_path) == "http://other.invalid/debian"


def test_mirror_override(tmp_path, monkeypatch):
    monkeypatch.setenv("RISKGYM_DEBIAN_MIRROR", "http://override.invalid/debian")
    assert host_mirror("bookworm", tmp_path) == "http://override.invalid/debian"


def test_recipe_hash_depends_on_the_recipe_and_only_on_it(tmp_path, monkeypatch):
    here = recipe_hash("bookworm", None)
    assert here != recipe_hash("trixie", None)
    assert here != recipe_hash("bookworm", "debian:bookworm-slim")
    copy = tmp_path / "containers"
    shutil.copytree(containers_dir(), copy)
    monkeypatch.setenv("RISKGYM_CONTAINERS", str(copy))
    assert recipe_hash("bookworm", None) == here  # the same Dockerfile in another folder: the same recipe
    dockerfile = copy / "base" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN true\n")
    assert recipe_hash("bookworm", None) != here  # an edited Dockerfile: another recipe


def test_build_is_idempotent(docker_ready):
    lines: list[str] = []
    build_base(say=lines.append)
    assert lines == [f"{BASE_TAG} is up to date (recipe {image_recipe(BASE_TAG)})"]


def test_build_from_an_image_the_user_has(docker_ready):
    """--from: the path for users with a registry; here FROM the debootstrapped root filesystem."""
    from riskgym.world.docker import DockerSandbox, docker_client

    client = docker_client()
    rootfs = next(t for i in client.images.list("riskgym/rootfs") for t in i.tags)
    tag = "riskgym/base-from-test:latest"
    lines: list[str] = []
    try:
        assert build_base(from_image=rootfs, tag=tag, force=True, say=lines.append) == tag
        assert lines[0] == f"building {tag} from {rootfs}" and lines[-1].startswith(f"{tag} built")
        assert image_recipe(tag) not in (None, image_recipe(BASE_TAG))  # another recipe: another hash
        with DockerSandbox(tag) as box:
            assert box.exec("id -un; python3 -c 'print(6 * 7)'").stdout == "agent\n42\n"
    finally:
        client.images.remove(tag, force=True)
