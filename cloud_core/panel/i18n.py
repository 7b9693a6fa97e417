"""The panel's words in English, Ukrainian and Russian.

Every message is one key with its three texts side by side, so none can be missing in one
language (``tests/cloud_core/test_panel.py`` checks the templates use only known keys).
The language is the ``lang`` cookie (set by the switcher in the header), else the
browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

LANGUAGES: dict[str, str] = {"en": "English", "uk": "Українська", "ru": "Русский"}
#: What the switcher shows (``UK`` would read as the United Kingdom).
LABELS: dict[str, str] = {"en": "EN", "uk": "УКР", "ru": "РУС"}
DEFAULT = "en"

# key: (English, Ukrainian, Russian)
MESSAGES: dict[str, tuple[str, str, str]] = {
    "panel": ("Control panel", "Панель керування", "Панель управления"),
    "nav.overview": ("Footfall", "Відвідуваність", "Посещаемость"),
    "nav.feed": ("Feed", "Стрічка", "Лента"),
    "nav.parking": ("Parking", "Паркування", "Парковка"),
    "nav.nodes": ("Nodes", "Вузли", "Узлы"),
    "nav.campaigns": ("Campaigns", "Кампанії", "Кампании"),
    "nav.mailings": ("Mailings", "Розсилки", "Рассылки"),
    "mailings.title": (
        "Mailings and their delivery",
        "Розсилки та їх доставка",
        "Рассылки и их доставка",
    ),
    "mailings.audience": ("Audience", "Аудиторія", "Аудитория"),
    "mailings.channel": ("Channel", "Канал", "Канал"),
    "mailings.created": ("Created", "Створено", "Создано"),
    "mailings.status.draft": ("draft", "чернетка", "черновик"),
    "mailings.status.sending": ("sent", "надіслано", "отправлено"),
    "mailings.pending": ("Pending", "У черзі", "В очереди"),
    "mailings.sent": ("Delivered", "Доставлено", "Доставлено"),
    "mailings.failed": ("Failed", "Не вдалося", "Не удалось"),
    "mailings.skipped": ("Skipped", "Пропущено", "Пропущено"),
    "nav.dead_letters": ("Dead letters", "Відхилені", "Отклонённые"),
    "nav.promo_codes": ("Promo codes", "Промокоди", "Промокоды"),
    "nav.settlement": ("Settlement", "Розрахунки", "Расчёты"),
    "login.title": ("Sign in", "Вхід", "Вход"),
    "login.key": ("Your API key", "Ваш API-ключ", "Ваш API-ключ"),
    "login.help": (
        "The mall office signs in with its admin key, a tenant with its own key.",
        "Офіс ТЦ входить з ключем адміністратора, орендар — зі своїм ключем.",
        "Офис ТЦ входит с ключом администратора, арендатор — со своим ключом.",
    ),
    "login.submit": ("Sign in", "Увійти", "Войти"),
    "login.bad_key": ("Unknown key.", "Невідомий ключ.", "Неизвестный ключ."),
    "login.bad_role": (
        "This key's role has no panel.",
        "Для ролі цього ключа панелі немає.",
        "Для роли этого ключа панели нет.",
    ),
    "login.too_many": (
        "Too many attempts; wait a minute.",
        "Забагато спроб; зачекайте хвилину.",
        "Слишком много попыток; подождите минуту.",
    ),
    "logout": ("Sign out", "Вийти", "Выйти"),
    "signed_in_as": ("Signed in as", "Ви увійшли як", "Вы вошли как"),
    "role.admin": ("mall office", "офіс ТЦ", "офис ТЦ"),
    "role.tenant": ("tenant", "орендар", "арендатор"),
    "live": ("updates live", "оновлюється наживо", "обновляется вживую"),
    "none": ("Nothing yet.", "Поки нічого.", "Пока ничего."),
    "footfall.title": (
        "Footfall per hour (unique shoppers' tags)",
        "Відвідуваність за годину (унікальні мітки покупців)",
        "Посещаемость за час (уникальные метки покупателей)",
    ),
    "footfall.hours": ("last 24 hours", "останні 24 години", "последние 24 часа"),
    "footfall.stores": ("Per store, today", "По магазинах, сьогодні", "По магазинам, сегодня"),
    "store": ("Store", "Магазин", "Магазин"),
    "unique_tags": ("Unique tags (24 h)", "Унікальні мітки (24 год)", "Уникальные метки (24 ч)"),
    "visits": ("Visits", "Візити", "Визиты"),
    "customers": ("Shoppers", "Покупці", "Покупатели"),
    "points": ("Points", "Бали", "Баллы"),
    "feed.credits": ("Credits", "Нарахування", "Начисления"),
    "feed.redemptions": ("Redemptions", "Списання", "Списания"),
    "feed.deliveries": ("Offer deliveries", "Доставлені пропозиції", "Доставленные предложения"),
    "time": ("Time (UTC)", "Час (UTC)", "Время (UTC)"),
    "chart.time": ("Time", "Час", "Время"),  # the charts show the browser's local time
    "customer": ("Shopper", "Покупець", "Покупатель"),
    "pocket": ("Pocket", "Гаманець", "Кошелёк"),
    "text": ("Text", "Текст", "Текст"),
    "campaign": ("Campaign", "Кампанія", "Кампания"),
    "trigger": ("Trigger", "Подія", "Событие"),
    "parking.occupancy": ("Occupancy", "Заповненість", "Заполненность"),
    "parking.recent": ("Recent entries", "Останні заїзди", "Последние въезды"),
    "car_park": ("Car park", "Паркінг", "Паркинг"),
    "occupied": ("Inside", "Всередині", "Внутри"),
    "capacity": ("Spaces", "Місць", "Мест"),
    "entry": ("Entry", "Заїзд", "Въезд"),
    "exit": ("Exit", "Виїзд", "Выезд"),
    "status": ("Status", "Стан", "Состояние"),
    "match": ("Plate match", "Збіг номера", "Совпадение номера"),
    "registered": ("Registered", "Зареєстрований", "Зарегистрирован"),
    "free_minutes": ("Free minutes", "Безкоштовні хвилини", "Бесплатные минуты"),
    "nodes.title": ("Nodes and kiosks", "Вузли та кіоски", "Узлы и киоски"),
    "node": ("Node", "Вузол", "Узел"),
    "state": ("State", "Стан", "Состояние"),
    "state.online": ("online", "у мережі", "в сети"),
    "state.offline": ("offline", "не в мережі", "не в сети"),
    "state.unknown": ("never seen", "не з'являвся", "не появлялся"),
    "last_seen": ("Last heartbeat", "Останній сигнал", "Последний сигнал"),
    "age": ("ago", "тому", "назад"),
    "outbox": ("Outbox", "Черга", "Очередь"),
    "outbox_age": ("Oldest in outbox", "Найстаріше в черзі", "Старейшее в очереди"),
    "restarts": ("Scanner restarts", "Перезапуски сканера", "Перезапуски сканера"),
    "temperature": ("CPU °C", "ЦП °C", "ЦП °C"),
    "uptime": ("Uptime", "Час роботи", "Время работы"),
    "software": ("Software", "ПЗ", "ПО"),
    "alerts": ("Alerts", "Тривоги", "Тревоги"),
    "alert.offline": ("is offline", "не в мережі", "не в сети"),
    "alert.quiet": ("has gone quiet", "замовк", "замолчал"),
    "campaigns.title": ("Campaigns", "Кампанії", "Кампании"),
    "campaigns.new": ("New campaign", "Нова кампанія", "Новая кампания"),
    "campaigns.edit": ("Edit campaign", "Редагувати кампанію", "Редактировать кампанию"),
    "id": ("Id", "Ідентифікатор", "Идентификатор"),
    "business": ("Business", "Бізнес", "Бизнес"),
    "title": ("Title", "Заголовок", "Заголовок"),
    "starts": ("Starts", "Початок", "Начало"),
    "ends": ("Ends", "Кінець", "Конец"),
    "stores": ("Stores", "Магазини", "Магазины"),
    "stores.help": (
        "none ticked: every store of the business",
        "нічого не вибрано: усі магазини бізнесу",
        "ничего не выбрано: все магазины бизнеса",
    ),
    "zones": ("Zones (comma-separated)", "Зони (через кому)", "Зоны (через запятую)"),
    "segment": ("Shoppers", "Покупці", "Покупатели"),
    "segment.all": ("everyone", "усі", "все"),
    "segment.new": ("new (30 days)", "нові (30 днів)", "новые (30 дней)"),
    "segment.returning": ("returning", "постійні", "постоянные"),
    "segment.drivers": ("drivers", "водії", "водители"),
    "cap_count": ("Times per shopper", "Разів на покупця", "Раз на покупателя"),
    "cap_period": (
        "… per hours (empty: ever)",
        "… за годин (порожньо: завжди)",
        "… за часов (пусто: всегда)",
    ),
    "bonus": ("Bonus points", "Бонусні бали", "Бонусные баллы"),
    "deliveries": ("Deliveries", "Доставки", "Доставки"),
    "save": ("Save", "Зберегти", "Сохранить"),
    "create": ("Create", "Створити", "Создать"),
    "delete": ("Delete", "Видалити", "Удалить"),
    "saved": ("Saved.", "Збережено.", "Сохранено."),
    "deleted": ("Deleted.", "Видалено.", "Удалено."),
    "times.local": ("local time of the mall", "місцевий час ТЦ", "местное время ТЦ"),
    "dead.title": (
        "Messages ingest rejected",
        "Повідомлення, відхилені прийомом",
        "Сообщения, отклонённые приёмом",
    ),
    "kind": ("Kind", "Тип", "Тип"),
    "reason": ("Reason", "Причина", "Причина"),
    "topic": ("Topic", "Топік", "Топик"),
    "size": ("Bytes", "Байти", "Байты"),
    "payload": ("Payload (start)", "Вміст (початок)", "Содержимое (начало)"),
    "settle.title": ("Settlement report", "Звіт взаєморозрахунків", "Отчёт взаиморасчётов"),
    "settle.period": ("Month", "Місяць", "Месяц"),
    "settle.show": ("Show", "Показати", "Показать"),
    "settle.csv": ("Download CSV", "Завантажити CSV", "Скачать CSV"),
    "settle.open": (
        "Open: the figures change while the month's redemptions and refunds come in.",
        "Відкритий: суми змінюються, поки надходять списання й повернення місяця.",
        "Открыт: суммы меняются, пока поступают списания и возвраты месяца.",
    ),
    "settle.closed": ("Closed (frozen) on", "Закрито (зафіксовано)", "Закрыт (зафиксирован)"),
    "settle.partners": ("Per partner (€)", "За партнерами (€)", "По партнёрам (€)"),
    "settle.partner": ("Partner", "Партнер", "Партнёр"),
    "settle.receivable": ("Owed to it", "Належить йому", "Причитается ему"),
    "settle.payable": ("It owes", "Він винен", "Он должен"),
    "settle.net": ("Net", "Сальдо", "Сальдо"),
    "settle.lines": ("Who owes whom (€)", "Хто кому винен (€)", "Кто кому должен (€)"),
    "settle.payer": ("Payer", "Платник", "Плательщик"),
    "settle.payee": ("Payee", "Отримувач", "Получатель"),
    "settle.amount": ("Points' value", "Вартість балів", "Стоимость баллов"),
    "settle.commission": ("Mall's commission", "Комісія ТЦ", "Комиссия ТЦ"),
    "settle.entries": ("Entries", "Записів", "Записей"),
    "settle.total": ("Total", "Разом", "Итого"),
    "feature.pending": (
        "This section is filled in by its own feature.",
        "Цей розділ заповнює окрема функція.",
        "Этот раздел заполняет отдельная функция.",
    ),
    "error.forbidden": (
        "Your role may not see this page.",
        "Вашій ролі ця сторінка недоступна.",
        "Вашей роли эта страница недоступна.",
    ),
    "error.not_found": ("No such thing.", "Не знайдено.", "Не найдено."),
    "error.too_large": ("The file is too large.", "Файл завеликий.", "Файл слишком большой."),
    "error.csrf": (
        "This form has expired; reload the page and try again.",
        "Форма застаріла; оновіть сторінку й спробуйте ще раз.",
        "Форма устарела; обновите страницу и попробуйте снова.",
    ),
    "error.invalid": ("Not saved:", "Не збережено:", "Не сохранено:"),
    # promo-code pools (cloud_core/panel/promo_views.py)
    "promo.about": (
        "Partners' promo codes, each given to one shopper (at a kiosk, or bought as a gift).",
        "Промокоди партнерів, кожен — одному покупцю (у кіоску або куплений як подарунок).",
        "Промокоды партнёров, каждый — одному покупателю (в киоске или купленный подарком).",
    ),
    "promo.valid_until": ("Valid until", "Дійсний до", "Действует до"),
    "promo.total": ("Codes", "Кодів", "Кодов"),
    "promo.claimed": ("Given", "Видано", "Выдано"),
    "promo.used": ("Used", "Використано", "Использовано"),
    "promo.free": ("Left", "Залишилось", "Осталось"),
    "promo.low": ("running low", "закінчуються", "заканчиваются"),
    "promo.gift": ("Gift (points)", "Подарунок (бали)", "Подарок (баллы)"),
    "promo.print": ("Print list", "Друкувати список", "Печать списка"),
    "promo.uploads": ("Uploads", "Завантаження", "Загрузки"),
    "promo.done": ("done", "готово", "готово"),
    "promo.failed": ("failed", "помилка", "ошибка"),
    "promo.running": ("in progress", "триває", "идёт"),
    "promo.added": ("added", "додано", "добавлено"),
    "promo.dup_file": ("repeated in the file", "повтори у файлі", "повторы в файле"),
    "promo.dup_pool": ("already in the pool", "вже в пулі", "уже в пуле"),
    "promo.bad": ("bad rows", "хибні рядки", "ошибочные строки"),
    "promo.line": ("Line", "Рядок", "Строка"),
    "promo.code": ("Code", "Код", "Код"),
    "promo.upload": ("Upload codes (CSV)", "Завантажити коди (CSV)", "Загрузить коды (CSV)"),
    "promo.csv_help": (
        "UTF-8 CSV, a code per line in the first column ('code' header optional), up to 4 MiB.",
        "CSV в UTF-8, код у рядку в першій колонці (заголовок 'code' — за бажанням), до 4 МіБ.",
        "CSV в UTF-8, код в строке в первом столбце (заголовок 'code' — по желанию), до 4 МиБ.",
    ),
    "promo.pool": ("Pool", "Пул", "Пул"),
    "promo.file": ("File", "Файл", "Файл"),
}

_INDEX = {code: i for i, code in enumerate(LANGUAGES)}


def translate(lang: str, key: str) -> str:
    """The message in this language (the key itself if unknown: visible, never a crash)."""
    texts = MESSAGES.get(key)
    return key if texts is None else texts[_INDEX.get(lang, 0)]


def pick(cookie: str | None, accept_language: str | None) -> str:
    """The language: the cookie's, else the first known one the browser accepts, else en."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT
