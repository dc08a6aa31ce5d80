"""The shared homes' labels (alerts/evaluate/datasets/kasteren.py, convert_kasteren.py) on small
synthetic TL files: whole labels, never substrings, and MIT's going-out labels read up to the
return. Pure: files in tmp_path, no database, no shared data."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from alerts.evaluate.datasets.convert_kasteren import convert_home
from alerts.evaluate.datasets.kasteren import Label, label_kind, load_home, with_returns

T0 = int(datetime(2003, 3, 27, 8, 0, tzinfo=UTC).timestamp())
MIN = 60
HOUR = 60 * MIN
SENSORS = {1: "Foyer,Door", 2: "Kitchen,Cabinet", 3: "Bathroom,Toilet Flush"}
MIT = {
    5: "Going-out-to-work",
    10: "Eating",
    45: "Sleeping",
    90: "Putting-away-dishes",
    95: "Putting-away-groceries",
    110: "Putting-away-laundry",
    155: "Going-out-for-shopping",
}
KASTEREN = {1: "leave-house", 10: "go-to-bed", 15: "prep-dinner"}


def _tl(
    tmp: Path,
    sensors: list[tuple[int, int, int]],
    activities: list[tuple[int, int, int]],
    activity_names: dict[int, str],
    name: str = "X",
) -> Path:
    data = tmp / "tl"
    data.mkdir(exist_ok=True)
    (data / f"house{name}.sensor_names").write_text(
        "".join(f"{k}\t{v}\n" for k, v in SENSORS.items()), encoding="latin-1"
    )
    (data / f"house{name}.activity_names").write_text(
        "".join(f"{k}\t{v}\n" for k, v in activity_names.items()), encoding="latin-1"
    )
    (data / f"house{name}.sensors").write_text("".join(f"{a}\t{b}\t{c}\n" for a, b, c in sensors))
    (data / f"house{name}.activities").write_text(
        "".join(f"{a}\t{b}\t{c}\n" for a, b, c in activities)
    )
    return data


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _labels_csv(tmp: Path, data: Path, name: str = "X") -> list[tuple[str, str, str]]:
    home = convert_home(name, tmp / "out", data)
    with (home / "labels.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["start", "end", "activity"]
    return [(a, b, c) for a, b, c in rows[1:]]


def test_putting_away_is_at_home_not_away(tmp_path: Path) -> None:
    acts = [(T0, 10 * MIN, 90), (T0 + HOUR, 5 * MIN, 95), (T0 + 2 * HOUR, 5 * MIN, 110)]
    data = _tl(tmp_path, [(T0 + 60, 10, 2)], acts, MIT)
    assert [r[2] for r in _labels_csv(tmp_path, data)] == ["other", "other", "other"]
    home = load_home("X", data)
    assert home.at_home_awake(T0 + 60, T0 + 120)
    for n in ("Putting-away-dishes", "Putting-away-groceries", "Putting-away-laundry"):
        assert label_kind(n) == "other"
    for n in ("leave-house", "away", "Going-out-to-work", "going-out-to-school"):
        assert label_kind(n) == "away"
    assert label_kind("Sleeping") == label_kind("go-to-bed") == "sleeping"


def test_a_going_out_label_lasts_until_the_return_door_ten_minutes_on(tmp_path: Path) -> None:
    back = T0 + 3 * HOUR
    sensors = [
        (T0 + 1 * MIN, 20, 1),  # the door going out (within 10 min of the label's start)
        (T0 + 90 * MIN, 30, 2),  # a cupboard while out (someone else, a sensor): not the end
        (back, 15, 1),  # the return
        (back + 2 * MIN, 10, 3),
    ]
    acts = [(T0, 2 * MIN, 5), (back + 5 * MIN, 20 * MIN, 10)]
    data = _tl(tmp_path, sensors, acts, MIT)
    assert _labels_csv(tmp_path, data) == [
        (_iso(T0), _iso(back), "away"),
        (_iso(back + 5 * MIN), _iso(back + 25 * MIN), "other"),
    ]
    home = load_home("X", data)  # the reader: the same interval, the label's own name
    assert home.labels[0] == Label(float(T0), float(back), "Going-out-to-work")
    assert not home.at_home_awake(T0 + 2 * HOUR, T0 + 2 * HOUR + 60)


def test_a_door_inside_the_leaving_label_is_not_the_return(tmp_path: Path) -> None:
    sensors = [(T0 + 12 * MIN, 20, 1), (T0 + 2 * HOUR, 20, 1)]
    acts = [(T0, 20 * MIN, 155), (T0 + 3 * HOUR, 10 * MIN, 10)]
    rows = _labels_csv(tmp_path, _tl(tmp_path, sensors, acts, MIT))
    assert rows[0] == (_iso(T0), _iso(T0 + 2 * HOUR), "away")


def test_without_a_door_it_stops_at_the_next_at_home_label(tmp_path: Path) -> None:
    sensors = [(T0 + 1 * MIN, 20, 1), (T0 + 30 * MIN, 10, 2)]
    acts = [(T0, 3 * MIN, 155), (T0 + 2 * HOUR, 10 * MIN, 95), (T0 + 9 * HOUR, HOUR, 45)]
    assert _labels_csv(tmp_path, _tl(tmp_path, sensors, acts, MIT)) == [
        (_iso(T0), _iso(T0 + 2 * HOUR), "away"),
        (_iso(T0 + 2 * HOUR), _iso(T0 + 2 * HOUR + 10 * MIN), "other"),
        (_iso(T0 + 9 * HOUR), _iso(T0 + 10 * HOUR), "sleeping"),
    ]


def test_the_next_label_before_the_door_ends_it(tmp_path: Path) -> None:
    sensors = [(T0 + 1 * MIN, 20, 1), (T0 + 3 * HOUR + 4 * MIN, 20, 1)]
    acts = [(T0, 3 * MIN, 5), (T0 + 3 * HOUR, 10 * MIN, 10)]
    rows = _labels_csv(tmp_path, _tl(tmp_path, sensors, acts, MIT))
    assert rows[0] == (_iso(T0), _iso(T0 + 3 * HOUR), "away")


def test_a_last_going_out_with_nothing_after_keeps_its_own_length() -> None:
    lab = Label(float(T0), float(T0 + 3 * MIN), "Going-out-to-work")
    assert with_returns([lab], [float(T0 + MIN)]) == (lab,)


def test_van_kasteren_leave_house_stays_as_labelled(tmp_path: Path) -> None:
    # A door inside the labelled absence and the next label hours later change nothing:
    # van Kasteren's leave-house is the whole absence already.
    sensors = [(T0 + 1 * MIN, 20, 1), (T0 + 40 * MIN, 20, 1), (T0 + 5 * HOUR, 20, 1)]
    acts = [(T0, 2 * HOUR, 1), (T0 + 6 * HOUR, 30 * MIN, 15), (T0 + 14 * HOUR, 8 * HOUR, 10)]
    data = _tl(tmp_path, sensors, acts, KASTEREN, name="A")
    assert _labels_csv(tmp_path, data, name="A") == [
        (_iso(T0), _iso(T0 + 2 * HOUR), "away"),
        (_iso(T0 + 6 * HOUR), _iso(T0 + 6 * HOUR + 30 * MIN), "other"),
        (_iso(T0 + 14 * HOUR), _iso(T0 + 22 * HOUR), "sleeping"),
    ]
    home = load_home("A", data)
    assert home.labels[0] == Label(float(T0), float(T0 + 2 * HOUR), "leave-house")
