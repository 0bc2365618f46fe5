from riskgym.sandbox.images import BASE_TAG, build_base, host_mirror, image_recipe, recipe_hash


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


def test_recipe_hash_depends_on_the_recipe():
    assert recipe_hash("bookworm", None) != recipe_hash("trixie", None)
    assert recipe_hash("bookworm", None) != recipe_hash("bookworm", "debian:bookworm-slim")
    assert recipe_hash("bookworm", None) == recipe_hash("bookworm", None)


def test_build_is_idempotent(docker_ready):
    lines: list[str] = []
    build_base(say=lines.append)
    assert lines == [f"{BASE_TAG} is up to date (recipe {image_recipe(BASE_TAG)})"]
