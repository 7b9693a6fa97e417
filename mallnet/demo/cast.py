"""Who is in the demo mall: its stores and tenants, its shoppers, its campaigns."""

from __future__ import annotations

from dataclasses import dataclass

MALL = "demo"
PROGRAM_PREFIX = "f7a3e1c2"
CORE_ID = "core-1"  # the core worker's client id and broker identity
INBOX_WATCHER = "monitor-demo-inbox"  # read-only (monitor role)
GATE_NODE = "gate-north"
KIOSK = "kiosk-atrium"
DRIVER, DRIVER_PLATE = "Ann", "KA 7777 TX"
KIOSK_SHOPPER = "Cat"
PARKING_BONUS = 50
KIOSK_VISIT_POINTS = 5
VISIT_POINTS = 10
MIN_DWELL_S = 45.0  # the core's visits.min_dwell_s in the demo (glances stay below it)
NODE_EXIT_TIMEOUT_S = 15.0  # the demo nodes' presence.exit_timeout_s


@dataclass(frozen=True)
class Store:
    id: str
    business: str
    name: str

    @property
    def node(self) -> str:
        return f"node-{self.business}"


# In corridor order: the first two face each other by the entrance, and so on.
STORES = (
    Store("bean-bar-l1", "bean-bar", "Bean Bar"),
    Store("book-nook-l1", "book-nook", "Book Nook"),
    Store("pizza-piazza-l1", "pizza-piazza", "Pizza Piazza"),
    Store("shoe-box-l1", "shoe-box", "Shoe Box"),
    Store("toy-town-l1", "toy-town", "Toy Town"),
    Store("tech-hub-l1", "tech-hub", "Tech Hub"),
    Store("style-studio-l1", "style-studio", "Style Studio"),
    Store("sport-zone-l1", "sport-zone", "Sport Zone"),
    Store("beauty-bar-l1", "beauty-bar", "Beauty Bar"),
    Store("cinema-stars-l1", "cinema-stars", "Cinema Stars"),
    Store("green-grocer-l1", "green-grocer", "Green Grocer"),
    Store("kids-corner-l1", "kids-corner", "Kids Corner"),
)

SHOPPER_NAMES = (
    "Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lea",
    "Max", "Nia", "Oli", "Pam", "Quinn", "Rex", "Sue", "Tom", "Uma", "Vic", "Wes", "Zoe",
)  # fmt: skip


def phone_of(index: int) -> str:
    """Ofcom drama numbers (+44 20 7946 0xxx): reserved, never a real person's."""
    return f"+44 20 7946 0{index + 1:03d}"


@dataclass(frozen=True)
class Campaign:
    id: str
    business: str
    store: str
    title: str
    text: str


CAMPAIGNS = (
    Campaign(
        "winter-cocoa", "bean-bar", "bean-bar-l1", "Hot chocolate -20 %",
        "Show this at Bean Bar before Sunday.",
    ),
    Campaign(
        "book-club", "book-nook", "book-nook-l1", "Second paperback half price",
        "Ask at the Book Nook till.",
    ),
    Campaign(
        "slice-and-drink", "pizza-piazza", "pizza-piazza-l1", "Slice + drink for 5 €",
        "Today at Pizza Piazza, level 1.",
    ),
)  # fmt: skip
